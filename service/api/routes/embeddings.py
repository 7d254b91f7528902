"""`POST /v1/embeddings`: OpenAI-compatible text embeddings."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import StateDep, TenantDep
from service.api.routes.encoding import adapter_used, encode, l2_normalize
from service.core.errors import invalid
from service.embedder import model_mismatch
from service.inputs import validate_texts
from service.schemas.common import ERROR_RESPONSES
from service.schemas.embeddings import Embedding, EmbeddingsRequest, EmbeddingsResponse, Usage

router = APIRouter(prefix="/v1", tags=["embeddings"])


@router.post("/embeddings", response_model=EmbeddingsResponse, responses=ERROR_RESPONSES)
async def create_embeddings(body: EmbeddingsRequest, state: StateDep, tenant: TenantDep) -> EmbeddingsResponse:
    """Embeds one text or a list of texts with the text tower (optionally through one of your adapters)."""
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
        result = await state.embedder.embed_texts(tenant, texts, adapter, body.truncate)
    vectors = l2_normalize(result.vectors) if body.normalize else result.vectors
    return EmbeddingsResponse(
        data=[Embedding(index=i, embedding=encode(v, body.encoding_format)) for i, v in enumerate(vectors)],
        model=served.model_name,
        adapter=adapter_used(adapter),
        usage=Usage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens),
    )
