"""`POST /v1/classify`: zero-shot classification of images against label names."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.gateway.api.bodies import ImageBody, image_body, request_body_openapi
from service.gateway.api.deps import StateDep, TenantDep
from service.gateway.api.routes.encoding import adapter_used
from service.gateway.embedder import model_mismatch
from service.gateway.inputs import validate_zeroshot
from service.gateway.schemas.common import ERROR_RESPONSES
from service.gateway.schemas.zeroshot import (
    Classification,
    ClassifyOptions,
    ClassifyRequest,
    ClassifyResponse,
    ClassifyUsage,
)

router = APIRouter(prefix="/v1", tags=["zero-shot"])
ClassifyBody = Annotated[
    ImageBody[ClassifyOptions], Depends(image_body(ClassifyOptions, ClassifyRequest, "images", many=True))
]


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=request_body_openapi(ClassifyRequest, ClassifyOptions, "images", many=True),
)
async def classify(state: StateDep, tenant: TenantDep, body: ClassifyBody) -> ClassifyResponse:
    """Scores each image against the labels: `softmax(cos(image CLS1, label) / temperature)`, `temperature` the
    request's or the model's own (GET /v1/models).

    A label's embedding averages its prompts (`templates`, default the official 9); prompt embeddings are cached.
    """
    options = body.options
    validate_zeroshot(options.labels, options.templates, state.settings.limits)
    async with state.inflight_slot():
        served = await state.backend.served_model()
        if (error := model_mismatch(options.model, served)) is not None:
            raise error
        adapter = await state.resolve_adapter(tenant, options.adapter)
        result = await state.recognizer.classify(
            tenant, body.images, options.labels, options.templates, adapter, options.resolution, options.temperature
        )
    data = [
        Classification(index=i, label=options.labels[int(row.argmax())], probabilities=[float(p) for p in row])
        for i, row in enumerate(result.probabilities)
    ]
    return ClassifyResponse(
        data=data,
        labels=options.labels,
        model=served.model_name,
        adapter=adapter_used(adapter),
        resolution=result.resolution,
        temperature=result.temperature,
        usage=ClassifyUsage(
            images=len(body.images),
            cached_images=result.cached_images,
            prompts=result.labels.prompts,
            cached_prompts=result.labels.cached,
        ),
    )
