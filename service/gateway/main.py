"""ASGI entry point: `uvicorn service.gateway.main:app` (settings from the environment, prefix TIPS_)."""

from service.gateway.app import create_app

app = create_app()
