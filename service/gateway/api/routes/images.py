"""`POST /v1/embed/image`: image embeddings (CLS1, CLS2) and optional patch tokens; JSON or multipart.

`image_embeddings` is the endpoint's work, shared by this FastAPI route (JSON and multipart bodies) and the hot path
(`service.gateway.api.hotpath`, JSON bodies).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from service.gateway.api.bodies import ImageBody, image_body, request_body_openapi
from service.gateway.api.deps import StateDep, TenantDep
from service.gateway.api.routes.encoding import adapter_json, encode, encode_f16, json_response, l2_normalize
from service.gateway.cache import Quota
from service.gateway.embedder import model_mismatch
from service.gateway.schemas.common import ERROR_RESPONSES
from service.gateway.schemas.images import ImageEmbedOptions, ImageEmbedRequest, ImageEmbedResponse
from service.gateway.state import AppState

router = APIRouter(prefix="/v1", tags=["images"])
ImagesDep = Annotated[
    ImageBody[ImageEmbedOptions], Depends(image_body(ImageEmbedOptions, ImageEmbedRequest, "images", many=True))
]


@router.post(
    "/embed/image",
    response_model=ImageEmbedResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=request_body_openapi(ImageEmbedRequest, ImageEmbedOptions, "images", many=True),
)
async def embed_images(state: StateDep, tenant: TenantDep, body: ImagesDep) -> Response:
    """Embeds images with the image tower; `return_patch_tokens` adds the dense patch features.

    Send a JSON body with base64 `images`, or a multipart form with one `images` file part per image and the
    other fields as form fields.
    """
    return json_response(await image_embeddings(state, tenant, body.options, body.images))


async def image_embeddings(
    state: AppState, tenant: str, options: ImageEmbedOptions, images: list[bytes], quota: Quota | None = None
) -> dict[str, Any]:
    """The response document (`ImageEmbedResponse`'s shape); `quota` as in `text_embeddings`."""
    async with state.inflight_slot():
        served = await state.backend.served_model()
        if (error := model_mismatch(options.model, served)) is not None:
            raise error
        adapter = await state.resolve_adapter(tenant, options.adapter)
        if adapter is not None:
            adapter.require("image")
        result = await state.embedder.embed_images(
            tenant, images, adapter, options.resolution, options.return_patch_tokens, quota
        )
    cls1 = l2_normalize(result.cls1) if options.normalize else result.cls1
    cls2 = l2_normalize(result.cls2) if options.normalize else result.cls2
    data = []
    for i in range(len(images)):
        patches = None
        if result.patch_tokens is not None:
            patches = {
                "grid": [result.grid, result.grid],
                "dim": served.embed_dim,
                "dtype": "float16",
                "data": encode_f16(result.patch_tokens[i]),
            }
        data.append(
            {
                "object": "image_embedding",
                "index": i,
                "embedding": encode(cls1[i], options.encoding_format),
                "embedding_cls2": encode(cls2[i], options.encoding_format),
                "patch_tokens": patches,
            }
        )
    return {
        "object": "list",
        "data": data,
        "model": served.model_name,
        "adapter": adapter_json(adapter),
        "resolution": result.grid * served.patch_size,
        "usage": {"images": len(images), "cached": result.cached},
    }
