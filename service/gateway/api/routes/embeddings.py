"""`POST /v1/embeddings`: OpenAI-compatible text embeddings.

`text_embeddings` is the endpoint's work, shared by this FastAPI route and the hot path (`service.gateway.api.hotpath`),
which serves the JSON bodies of production traffic without the framework's per-request machinery.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from service.gateway.api.deps import StateDep, TenantDep
from service.gateway.api.routes.encoding import adapter_json, encode, json_response, l2_normalize
from service.gateway.cache import Quota
from service.gateway.core.errors import invalid
from service.gateway.embedder import model_mismatch
from service.gateway.inputs import validate_texts
from service.gateway.schemas.common import ERROR_RESPONSES
from service.gateway.schemas.embeddings import EmbeddingsRequest, EmbeddingsResponse
from service.gateway.state import AppState

router = APIRouter(prefix="/v1", tags=["embeddings"])


@router.post("/embeddings", response_model=EmbeddingsResponse, responses=ERROR_RESPONSES)
async def create_embeddings(body: EmbeddingsRequest, state: StateDep, tenant: TenantDep) -> Response:
    """Embeds one text or a list of texts with the text tower (optionally through one of your adapters)."""
    return json_response(await text_embeddings(state, tenant, body))


async def text_embeddings(
    state: AppState, tenant: str, body: EmbeddingsRequest, quota: Quota | None = None
) -> dict[str, Any]:
    """The response document (`EmbeddingsResponse`'s shape). `quota`: the tenant's rate limit, checked in the
    cache's round trip (None: already enforced)."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    validate_texts(texts, state.settings.limits.max_items, state.settings.limits.max_text_chars)
    async with state.inflight_slot():
        served = await state.backend.served_model()
        if (error := model_mismatch(body.model, served)) is not None:
            raise error
        if body.dimensions is not None and body.dimensions != served.embed_dim:
            raise invalid(f"dimensions must be {served.embed_dim} for {served.model_name}", param="dimensions")
        adapter = await state.resolve_adapter(tenant, body.adapter)
        if adapter is not None:
            adapter.require("text")
        result = await state.embedder.embed_texts(tenant, texts, adapter, body.truncate, quota)
    vectors = l2_normalize(result.vectors) if body.normalize else result.vectors
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": served.model_name,
        "adapter": adapter_json(adapter),
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }
