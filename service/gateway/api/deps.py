"""Dependencies shared by the routes, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from service.gateway.core.errors import GatewayError
from service.gateway.core.security import bearer_token
from service.gateway.state import AppState


async def get_state(request: Request) -> AppState:
    # async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hand-off on every request
    # (measured: about a tenth of the gateway's CPU per request, bench/gateway_cost.py).
    state: AppState = request.app.state.tipsv2
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_tenant(
    state: StateDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    x_api_key: Annotated[str | None, Header(description="Alternative to Authorization")] = None,
) -> str:
    """The caller's tenant, once its key is valid (401 otherwise) and its rate limit admits the request (429)."""
    try:
        tenant = state.keyring.tenant_for(bearer_token(authorization, x_api_key))
    except GatewayError:
        state.metrics.auth_failures.inc()
        raise
    await state.rate_limiter.enforce(tenant)
    return tenant


TenantDep = Annotated[str, Depends(get_tenant)]
