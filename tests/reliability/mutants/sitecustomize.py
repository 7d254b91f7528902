"""Removes protections, to check that the reliability tests catch their loss (docs/reliability.md, last table).

Nothing in the repository is edited: Python imports this file at start-up when its folder is on PYTHONPATH, and in a
`python -m pytest` or `python -m uvicorn` process (the test run and the gateway processes it starts, never
tritonserver's Python stubs) it replaces the named protections in memory:

    RELVERIFY=inflight,aof PYTHONPATH=tests/reliability/mutants python -m pytest tests/reliability/...

Every test guarding a removed protection must then fail. Never set RELVERIFY outside such a check.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

REMOVE = {n for n in os.environ.get("RELVERIFY", "").split(",") if n}
_ARGV = list(getattr(sys, "orig_argv", []))
_MODULE = _ARGV[_ARGV.index("-m") + 1] if "-m" in _ARGV[:-1] else ""
MUTANTS: dict[str, Callable[[], None]] = {}


def mutant(function: Callable[[], None]) -> Callable[[], None]:
    MUTANTS[function.__name__] = function
    return function


@mutant
def inflight() -> None:
    """The in-flight bound admits everything."""
    from service.gateway import state

    @contextlib.asynccontextmanager
    async def slot(self: Any) -> AsyncIterator[None]:
        self.metrics.inflight.inc()
        try:
            yield
        finally:
            self.metrics.inflight.dec()

    state.AppState.inflight_slot = slot  # type: ignore[method-assign]


@mutant
def deadline() -> None:
    """Triton calls have no client deadline."""
    import tritonclient.grpc.aio as grpc

    infer = grpc.InferenceServerClient.infer

    async def without_deadline(self: Any, *args: Any, client_timeout: Any = None, **kwargs: Any) -> Any:
        return await infer(self, *args, **kwargs)

    grpc.InferenceServerClient.infer = without_deadline  # type: ignore[method-assign]


@mutant
def retry_after() -> None:
    """503 for an unreachable Triton without Retry-After."""
    from service.gateway.core.errors import ErrorKind, GatewayError
    from service.gateway.inference import triton

    def unavailable(self: Any, what: str) -> GatewayError:
        return GatewayError(ErrorKind.BACKEND_UNAVAILABLE, what, code="triton_unavailable")

    triton.TritonBackend._unavailable = unavailable  # type: ignore[method-assign]


@mutant
def backoff() -> None:
    """gRPC's default reconnect backoff (up to 120 s)."""
    from service.gateway.inference import triton

    triton.channel_args = lambda settings: None  # type: ignore[assignment,return-value]


@mutant
def cache_failopen() -> None:
    """A Redis error on a cache read fails the request."""
    from service.gateway import cache

    async def get_many(self: Any, keys: list[str], quota: Any = None) -> list[bytes | None]:
        if quota is not None:
            await quota.check_and_read([])
        return list(await self.client.mget(list(keys))) if keys else []

    cache.EmbeddingCache.get_many = get_many  # type: ignore[method-assign]


@mutant
def aof() -> None:
    """The test Redis runs without its append-only file."""
    from service.tools.local import redis_server

    start = redis_server.RedisServer.start

    def without_aof(self: Any, *args: Any, **kwargs: Any) -> Any:
        self.appendonly = False
        return start(self, *args, **kwargs)

    redis_server.RedisServer.start = without_aof  # type: ignore[method-assign]


@mutant
def flock() -> None:
    """No lock file between processes writing one adapter name."""
    import types

    from service.gateway.adapters import store

    store.fcntl = types.SimpleNamespace(flock=lambda *args: None, LOCK_EX=2, LOCK_UN=8)  # type: ignore[assignment]


@mutant
def require_root() -> None:
    """A missing store volume is treated as an empty store (and recreated)."""
    from service.gateway.adapters import store

    store.AdapterStore._require_root = lambda self: None  # type: ignore[method-assign]


@mutant
def drain() -> None:
    """uvicorn gives in-flight requests 0.1 s after SIGTERM."""
    import uvicorn.config

    init = uvicorn.config.Config.__init__

    def impatient(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["timeout_graceful_shutdown"] = 0.1
        init(self, *args, **kwargs)

    uvicorn.config.Config.__init__ = impatient  # type: ignore[method-assign]


@mutant
def validation_handler() -> None:
    """Only GatewayError is mapped to the error body (FastAPI's own 422/400 shapes leak through)."""
    from service.gateway import app
    from service.gateway.core.errors import GatewayError

    def gateway_errors_only(application: Any) -> None:
        application.add_exception_handler(GatewayError, lambda request, exc: exc.response())

    app.install_error_handlers = gateway_errors_only  # type: ignore[assignment]


@mutant
def values_check() -> None:
    """The adapter validator does not look at tensor values (NaN/Inf)."""
    import training.contracts.adapter_file as adapter_format

    adapter_format._check_values = lambda arrays: None  # type: ignore[assignment]


def _keyring(keep_key: bool) -> None:
    from service.gateway.core import security
    from service.gateway.core.config import hash_key

    def tenant_for(self: Any, key: str | None) -> str:
        if keep_key:
            self._last_key = key
        presented = bytes.fromhex(hash_key(key or "-"))
        for digest, tenant in self._entries:
            if security.hmac.compare_digest(presented, digest):
                return str(tenant)  # early exit: the lookup's time depends on where the key is stored
        raise security.GatewayError(security.ErrorKind.AUTHENTICATION, "invalid API key", code="invalid_api_key")

    security.KeyRing.tenant_for = tenant_for  # type: ignore[method-assign]


@mutant
def early_return() -> None:
    """Key lookup stops at the first matching digest."""
    _keyring(keep_key=False)


@mutant
def keep_key() -> None:
    """The key ring remembers the last plaintext key."""
    _keyring(keep_key=True)


@mutant
def log_key() -> None:
    """Authentication logs the presented key."""
    from service.gateway.api import deps

    bearer = deps.bearer_token

    def logged(authorization: str | None, x_api_key: str | None) -> str | None:
        token = bearer(authorization, x_api_key)
        logging.getLogger("service.auth").info("authenticating %s", token)
        return token

    deps.bearer_token = logged


@mutant
def log_adapter() -> None:
    """Uploads log the head of the adapter file at DEBUG."""
    from service.gateway.adapters import manager

    validate = manager.AdapterManager._validate

    def logged(self: Any, data: bytes, served: Any) -> Any:
        logging.getLogger("service.gateway.adapters").debug("validating %r", data[:2000])
        return validate(self, data, served)

    manager.AdapterManager._validate = logged  # type: ignore[method-assign]


@mutant
def path_label() -> None:
    """Metrics label requests with their raw path instead of the route template."""
    from service.gateway.api import middleware

    middleware._route_template = lambda scope: str(scope["path"])


@mutant
def cache_tenant() -> None:
    """Cache keys leave the tenant out."""
    from service.gateway import embedder

    key = embedder.cache_key
    embedder.cache_key = lambda model_id, tenant, *rest: key(model_id, "shared", *rest)


@mutant
def body_stream() -> None:
    """The body limit only reads Content-Length (chunked bodies pass)."""
    from service.gateway.api import middleware

    async def length_only(self: Any, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    middleware.BodyLimitMiddleware.__call__ = length_only  # type: ignore[method-assign]


@mutant
def rofs() -> None:
    """The chart's containers get a writable root filesystem (rendered from a modified copy of the chart)."""
    import shutil
    import tempfile
    from pathlib import Path

    sys.path.insert(0, os.getcwd())
    from tests.deploy import tools

    copy = Path(tempfile.mkdtemp()) / "tipsv2"
    shutil.copytree(tools.CHART, copy)
    helpers = copy / "templates" / "_helpers.tpl"
    helpers.write_text(helpers.read_text().replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"))
    tools.helm_template.__kwdefaults__["chart"] = copy


if REMOVE and _MODULE in ("pytest", "uvicorn"):
    unknown = REMOVE - set(MUTANTS)
    if unknown:
        raise SystemExit(f"RELVERIFY: unknown protections {sorted(unknown)}; known: {sorted(MUTANTS)}")
    for name in sorted(REMOVE):
        MUTANTS[name]()
    print(f"RELVERIFY: removed {sorted(REMOVE)} in {_MODULE}", file=sys.stderr)
