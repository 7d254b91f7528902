"""Dependencies shared by the routes, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Header, Request
from fastapi.dependencies.models import Dependant
from starlette.types import Scope

from service.gateway.core.errors import ErrorKind, GatewayError
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


async def refuse_unknown_query(request: Request) -> None:
    """Refuses query parameters the matched endpoint does not declare (400 naming them and the accepted ones).

    Without it a misspelt `?activte=false`, or a body field sent as a query parameter, would be dropped silently and
    the request served as if it had not been sent. Requests without a query string pay one dictionary lookup.
    """
    if not request.scope.get("query_string"):
        return
    dependant: Dependant | None = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    error = unknown_query_error(request.scope, frozenset(_query_names(dependant)))
    if error is not None:
        raise error


def unknown_query_error(scope: Scope, accepted: frozenset[str]) -> GatewayError | None:
    """A 400 naming the query parameters of `scope` outside `accepted`, or None when there are none."""
    query = scope.get("query_string", b"").decode("latin-1")
    unknown = sorted({name for name, _ in parse_qsl(query, keep_blank_values=True)} - accepted)
    if not unknown:
        return None
    expected = ", ".join(sorted(accepted)) if accepted else "none"
    return GatewayError(
        ErrorKind.INVALID_REQUEST,
        f"unknown query parameter(s) {', '.join(unknown)} for {scope.get('method', '')} {scope.get('path', '')}; "
        f"accepted: {expected} (request fields go in the body)",
        code="unknown_query_parameter",
    )


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters an endpoint declares, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names
