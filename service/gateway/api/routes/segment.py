"""`POST /v1/segment`: zero-shot segmentation of one image against label names."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends

from service.gateway.api.bodies import ImageBody, image_body, request_body_openapi
from service.gateway.api.deps import StateDep, TenantDep
from service.gateway.api.routes.encoding import adapter_used
from service.gateway.embedder import model_mismatch
from service.gateway.inputs import validate_zeroshot
from service.gateway.schemas.common import ERROR_RESPONSES
from service.gateway.schemas.zeroshot import (
    LabelMap,
    LabelShare,
    SegmentOptions,
    SegmentRequest,
    SegmentResponse,
    SegmentUsage,
)

router = APIRouter(prefix="/v1", tags=["zero-shot"])
SegmentBody = Annotated[
    ImageBody[SegmentOptions], Depends(image_body(SegmentOptions, SegmentRequest, "image", many=False))
]


@router.post(
    "/segment",
    response_model=SegmentResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=request_body_openapi(SegmentRequest, SegmentOptions, "image", many=False),
)
async def segment(state: StateDep, tenant: TenantDep, body: SegmentBody) -> SegmentResponse:
    """Labels every pixel: a PNG label map at the input's resolution and each label's share of the pixels.

    Patch features are MaskCLIP value-path tokens of the last block; per-pixel scores are their cosine similarity
    with the labels' prompt-averaged text embeddings, upsampled bilinearly (slide mode averages the windows'
    class probabilities, as the official evaluation).
    """
    options = body.options
    validate_zeroshot(options.labels, options.templates, state.settings.limits)
    async with state.inflight_slot():
        served = await state.backend.served_model()
        if (error := model_mismatch(options.model, served)) is not None:
            raise error
        adapter = await state.resolve_adapter(tenant, options.adapter)
        result = await state.recognizer.segment(
            tenant,
            body.images[0],
            options.labels,
            options.templates,
            adapter,
            options.mode,
            options.window,
            options.stride,
        )
    height, width = result.label_map.shape
    return SegmentResponse(
        label_map=LabelMap(
            width=width,
            height=height,
            bit_depth=8 if len(options.labels) <= 256 else 16,
            data=base64.b64encode(result.png).decode(),
        ),
        labels=[
            LabelShare(index=i, label=label, pixel_share=float(result.shares[i]))
            for i, label in enumerate(options.labels)
        ],
        mode=options.mode,
        window=result.window,
        stride=result.stride,
        model=served.model_name,
        adapter=adapter_used(adapter),
        usage=SegmentUsage(windows=result.windows, prompts=result.labels.prompts, cached_prompts=result.labels.cached),
    )
