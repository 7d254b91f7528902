"""The gateway's app factory: settings -> state (backend, cache, tokenizer) -> FastAPI app with one error format."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from wsgiref.simple_server import WSGIServer

from fastapi import FastAPI
from prometheus_client import start_http_server
from starlette.types import Receive, Scope, Send

from service.gateway.adapters.manager import AdapterManager
from service.gateway.adapters.notifier import AdapterNotifier
from service.gateway.adapters.registry import AdapterRegistry
from service.gateway.adapters.store import AdapterStore
from service.gateway.api import hotpath
from service.gateway.api.docs import install_docs
from service.gateway.api.main import api_router
from service.gateway.api.middleware import BodyLimitMiddleware, MetricsMiddleware
from service.gateway.cache import EmbeddingCache
from service.gateway.core.config import Settings, get_settings
from service.gateway.core.errors import install_error_handlers
from service.gateway.core.metrics import Metrics, multiprocess
from service.gateway.core.redis import RedisBreaker, make_client
from service.gateway.core.security import KeyRing
from service.gateway.embedder import Embedder
from service.gateway.inference.backend import InferenceBackend
from service.gateway.ratelimit import RateLimiter
from service.gateway.recognition import Recognizer
from service.gateway.state import AppState
from training.tipsv2.tokenizer import Tokenizer

log = logging.getLogger("service")
TITLE = "tipsv2-serve"

DESCRIPTION = """Dense image-text embeddings from TIPSv2, with per-tenant AdaLink adapters.

Authenticate with `Authorization: Bearer <API key>`. Every error has the body
`{"error": {"type", "code", "message", "param"}}`."""


def build_state(
    settings: Settings, backend: InferenceBackend | None = None, metrics: Metrics | None = None
) -> AppState:
    metrics = metrics or Metrics()
    if backend is None:
        from service.gateway.inference.triton import TritonBackend

        backend = TritonBackend(settings.triton, metrics)
    redis = make_client(settings.redis)
    breaker = RedisBreaker(settings.redis.retry_interval_s, metrics)
    cache = EmbeddingCache(redis, breaker, settings.redis.cache_ttl_s, settings.redis.local_cache_bytes)
    embedder = Embedder(backend, cache, Tokenizer(settings.tokenizer_path), metrics, settings.limits)
    store = AdapterStore(settings.adapter_store) if settings.adapter_store is not None else None
    registry = AdapterRegistry(store, settings.adapters.revalidate_s, metrics)
    notifier = AdapterNotifier(
        redis, breaker, registry, metrics, settings.adapters.channel, settings.redis.retry_interval_s
    )
    return AppState(
        settings=settings,
        metrics=metrics,
        backend=backend,
        redis=redis,
        cache=cache,
        embedder=embedder,
        recognizer=Recognizer(backend, embedder, metrics, settings.limits),
        keyring=KeyRing(settings.key_table()),
        rate_limiter=RateLimiter(redis, breaker, settings.rate_limit, metrics),
        registry=registry,
        notifier=notifier,
        adapters=AdapterManager(store, registry, notifier, metrics, settings.adapters.max_bytes),
    )


def _start_metrics_server(port: int, host: str, metrics: Metrics) -> WSGIServer | None:
    """Serves the registry on its own port (a thread), so the public API port does not expose it. Several workers
    (multiprocess mode) leave the port to the process that supervises them (`service.gateway.workers`)."""
    if not port or multiprocess():
        return None
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    log.info("metrics on %s:%d (not on the API port)", host, port)
    return server


class GatewayApp(FastAPI):
    """FastAPI for every route, with the hot JSON endpoints served straight from ASGI
    (`service.gateway.api.hotpath`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = hotpath.hot_route(scope)
        state: AppState | None = getattr(self.state, "tipsv2", None)
        if handler is None or state is None:
            await super().__call__(scope, receive, send)
        else:
            await hotpath.serve(state, handler, scope, receive, send)


def create_app(settings: Settings | None = None, backend: InferenceBackend | None = None) -> GatewayApp:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = build_state(settings, backend, metrics)
        app.state.tipsv2 = state
        await state.start()
        metrics_server = _start_metrics_server(settings.metrics_port, settings.metrics_host, metrics)
        if not await state.backend.ready():
            log.warning("Triton is not ready yet at %s; /readyz will say so until it is", settings.triton.url)
        try:
            yield
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
            await state.close()

    app = GatewayApp(
        title=TITLE, version="0.1.0", description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    install_docs(app, TITLE)  # offline: the assets come from a package, not a CDN
    install_error_handlers(app)
    app.include_router(api_router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.limits.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
