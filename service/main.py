"""ASGI entry point: `uvicorn service.main:app` (settings from the environment, prefix TIPS_)."""

from service.app import create_app

app = create_app()
