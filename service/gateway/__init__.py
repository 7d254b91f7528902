"""The FastAPI gateway (`python -m service.gateway.workers`; ASGI app `service.gateway.main:app`).

    app.py, main.py, workers.py, state.py   the app factory, its entry point, the worker processes, shared state
    api/                                    routes, the hot path, request bodies, dependencies, middleware
    schemas/                                the HTTP API's pydantic models
    embedder.py, recognition.py             embeddings, and zero-shot classification / segmentation over them
    inputs.py, zeroshot.py                  request inputs (texts, images), the numpy side of zero-shot
    adapters/                               the adapter store, registry, uploads and hot-swap notices
    inference/                              the Triton client (gRPC), cross-request batching, a fake for unit tests
    cache.py, ratelimit.py                  the Redis cache and the per-tenant quota (one round trip)
    core/                                   settings, the one error type, metrics, Redis, API keys

Torch-free. It may import `training/`'s torch-free modules (tokenizer, decoding, preprocessing, the adapter format),
never the Triton side nor the tools.
"""
