"""`POST /v1/embed/image`: image embeddings (both CLS tokens) and, on request, the patch tokens.

Images come as base64 in a JSON body or as files of a multipart body (field `images`, repeated).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.gateway.schemas.common import ADAPTER_REF_PATTERN, AdapterUsed, EncodingFormat


class ImageEmbedOptions(BaseModel):
    """Everything but the images: the JSON body adds `images` (base64); a multipart body sends them as files."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="Served model name; omitted means the served model")
    adapter: str | None = Field(None, pattern=ADAPTER_REF_PATTERN, description="`name` or `name@version`")
    encoding_format: EncodingFormat = "float"
    normalize: bool = True
    resolution: int | None = Field(None, description="Square input size; one of the served resolutions")
    return_patch_tokens: bool = Field(False, description="Also return the patch tokens (float16, base64)")


class ImageEmbedRequest(ImageEmbedOptions):
    images: list[str] = Field(description="Base64-encoded image files (PNG, JPEG, WebP, ...); data URIs accepted")


class PatchTokens(BaseModel):
    grid: tuple[int, int]
    dim: int
    dtype: str = "float16"
    data: str = Field(description="base64 of a row-major (grid_h, grid_w, dim) little-endian float16 array")


class ImageEmbedding(BaseModel):
    object: str = "image_embedding"
    index: int
    embedding: list[float] | str = Field(description="CLS1, aligned with alt-text (the demos' image embedding)")
    embedding_cls2: list[float] | str = Field(description="CLS2, aligned with synthetic captions")
    patch_tokens: PatchTokens | None = None


class ImageUsage(BaseModel):
    images: int
    cached: int


class ImageEmbedResponse(BaseModel):
    object: str = "list"
    data: list[ImageEmbedding]
    model: str
    adapter: AdapterUsed | None = None
    resolution: int
    usage: ImageUsage
