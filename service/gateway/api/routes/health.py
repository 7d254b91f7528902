"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from service.gateway.api.deps import StateDep
from service.gateway.core.errors import ErrorKind, GatewayError
from service.gateway.schemas.health import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive (no dependency is checked)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(state: StateDep) -> JSONResponse:
    """Ready when Triton serves the model. Redis down is reported as `degraded` (serving continues uncached)."""
    triton_ok = await state.backend.ready()
    cache_ok = await state.cache.ping()
    detail = []
    model = model_id = None
    if triton_ok:
        try:
            served = await state.backend.served_model()
            model, model_id = served.model_name, served.model_id
        except GatewayError as exc:
            triton_ok = False
            detail.append(exc.message)
    else:
        detail.append("triton: not ready or unreachable")
    if not cache_ok:
        detail.append("redis: unreachable; serving without the cache, rate limits not enforced")
    if not state.notifier.subscribed.is_set():
        detail.append(
            f"adapter notices: not subscribed; adapter changes reach this replica within "
            f"{state.settings.adapters.revalidate_s:g} s"
        )
    status = "not_ready" if not triton_ok else ("ready" if cache_ok else "degraded")
    body = Readiness(status=status, triton=triton_ok, cache=cache_ok, model=model, model_id=model_id, detail=detail)
    return JSONResponse(body.model_dump(), status_code=200 if triton_ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(state: StateDep) -> Response:
    if state.settings.metrics_port:
        raise GatewayError(ErrorKind.NOT_FOUND, "metrics are served on the metrics port", code="not_found")
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
