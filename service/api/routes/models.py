"""`GET /v1/models`: the served models (today one; the list shape leaves room for several)."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import StateDep, TenantDep
from service.inference.backend import ServedModelInfo
from service.schemas.common import ERROR_RESPONSES
from service.schemas.models import ImageInput, ModelList, ServedModelCard, TextInput

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelList, responses=ERROR_RESPONSES)
async def list_models(state: StateDep, _tenant: TenantDep) -> ModelList:
    """The served models with their embedding width, input sizes, modalities and which towers take adapters."""
    served = await state.backend.served_model()
    adapters_enabled = state.settings.adapter_store is not None
    return ModelList(data=[model_card(served, adapters_enabled)])


def model_card(served: ServedModelInfo, adapters_enabled: bool) -> ServedModelCard:
    return ServedModelCard(
        id=served.model_name,
        version=served.model_id,
        embedding_dim=served.embed_dim,
        modalities=["text", "image"],
        image=ImageInput(
            resolutions=list(served.resolutions),
            default_resolution=served.default_resolution,
            patch_size=served.patch_size,
        ),
        text=TextInput(max_tokens=served.text_len),
        classify_temperature=served.temperature,
        adapters=["text", "image"] if adapters_enabled else [],
    )
