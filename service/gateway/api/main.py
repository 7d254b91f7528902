"""Includes every router; the app factory lives in `service.gateway.app`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.gateway.api.deps import refuse_unknown_query
from service.gateway.api.routes import adapters, classify, embeddings, health, images, models, segment

api_router = APIRouter(dependencies=[Depends(refuse_unknown_query)])  # no query parameter is silently ignored
api_router.include_router(health.router)
api_router.include_router(models.router)
api_router.include_router(embeddings.router)
api_router.include_router(images.router)
api_router.include_router(classify.router)
api_router.include_router(segment.router)
api_router.include_router(adapters.router)
