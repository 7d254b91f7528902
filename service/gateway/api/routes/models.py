"""`GET /v1/models`: the served models (today one; the list shape leaves room for several)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.gateway.api.deps import StateDep, TenantDep
from service.gateway.embedder import model_mismatch
from service.gateway.inference.backend import ServedModelInfo
from service.gateway.schemas.common import ERROR_RESPONSES
from service.gateway.schemas.models import ImageInput, ModelList, ServedModelCard, TextInput

router = APIRouter(prefix="/v1", tags=["models"])
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"  # registry names (tipsv2-b14) and OpenAI-style ids


@router.get("/models", response_model=ModelList, responses=ERROR_RESPONSES)
async def list_models(state: StateDep, _tenant: TenantDep) -> ModelList:
    """The served models with their embedding width, input sizes, modalities and which towers take adapters."""
    served = await state.backend.served_model()
    adapters_enabled = state.settings.adapter_store is not None
    return ModelList(data=[model_card(served, adapters_enabled)])


@router.get("/models/{model}", response_model=ServedModelCard, responses=ERROR_RESPONSES)
async def show_model(
    model: Annotated[str, Path(pattern=MODEL_ID_PATTERN, description="A model `id` from GET /v1/models")],
    state: StateDep,
    _tenant: TenantDep,
) -> ServedModelCard:
    """One served model (OpenAI's retrieve); 404 for a model this gateway does not serve."""
    served = await state.backend.served_model()
    if (error := model_mismatch(model, served)) is not None:
        raise error
    return model_card(served, state.settings.adapter_store is not None)


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
