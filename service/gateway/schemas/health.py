"""Health and readiness bodies."""

from __future__ import annotations

from pydantic import BaseModel


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str  # "ready" | "degraded" | "not_ready"
    triton: bool
    cache: bool
    model: str | None = None
    model_id: str | None = None
    detail: list[str] = []
