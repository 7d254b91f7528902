"""`POST /v1/embed/image`: image embeddings (CLS1, CLS2) and optional patch tokens."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter

from service.api.deps import StateDep, TenantDep
from service.api.routes.encoding import encode, encode_f16, l2_normalize
from service.core.errors import ErrorKind, GatewayError, invalid
from service.embedder import model_mismatch
from service.schemas.common import ERROR_RESPONSES, AdapterUsed
from service.schemas.images import ImageEmbedding, ImageEmbedRequest, ImageEmbedResponse, ImageUsage, PatchTokens

router = APIRouter(prefix="/v1", tags=["images"])


@router.post("/embed/image", response_model=ImageEmbedResponse, responses=ERROR_RESPONSES)
async def embed_images(body: ImageEmbedRequest, state: StateDep, tenant: TenantDep) -> ImageEmbedResponse:
    """Embeds images with the image tower; `return_patch_tokens` adds the dense patch features."""
    limits = state.settings.limits
    if not body.images:
        raise invalid("images is an empty list", code="empty_input", param="images")
    if len(body.images) > limits.max_items:
        raise invalid(
            f"{len(body.images)} images; at most {limits.max_items} per request", code="too_many_inputs", param="images"
        )
    images = [decode_base64_image(item, index, limits.max_image_bytes) for index, item in enumerate(body.images)]
    async with state.inflight_slot():
        served = await state.backend.served_model()
        if (error := model_mismatch(body.model, served)) is not None:
            raise error
        adapter = await state.resolve_adapter(tenant, body.adapter)
        result = await state.embedder.embed_images(tenant, images, adapter, body.resolution, body.return_patch_tokens)
    cls1 = l2_normalize(result.cls1) if body.normalize else result.cls1
    cls2 = l2_normalize(result.cls2) if body.normalize else result.cls2
    data = []
    for i in range(len(images)):
        patches = None
        if result.patch_tokens is not None:
            patches = PatchTokens(
                grid=(result.grid, result.grid), dim=served.embed_dim, data=encode_f16(result.patch_tokens[i])
            )
        data.append(
            ImageEmbedding(
                index=i,
                embedding=encode(cls1[i], body.encoding_format),
                embedding_cls2=encode(cls2[i], body.encoding_format),
                patch_tokens=patches,
            )
        )
    return ImageEmbedResponse(
        data=data,
        model=served.model_name,
        resolution=result.grid * served.patch_size,
        adapter=AdapterUsed(name=adapter.name, version=adapter.version) if adapter else None,
        usage=ImageUsage(images=len(images), cached=result.cached),
    )


def decode_base64_image(item: str, index: int, max_bytes: int) -> bytes:
    """Base64 (optionally a `data:image/...;base64,` URI) -> bytes, refusing empty and oversized payloads."""
    payload = item.split(",", 1)[1] if item.startswith("data:") else item
    if len(payload) > (max_bytes * 4) // 3 + 4:
        raise GatewayError(
            ErrorKind.PAYLOAD_TOO_LARGE,
            f"images[{index}] exceeds {max_bytes} bytes",
            code="image_too_large",
            param="images",
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid(f"images[{index}] is not valid base64", code="invalid_base64", param="images") from exc
    if not data:
        raise invalid(f"images[{index}] is empty", code="empty_input", param="images")
    return data
