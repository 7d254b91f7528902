"""`POST /v1/classify` and `POST /v1/segment`: zero-shot classification and segmentation against label names.

Images come as base64 in a JSON body or as files of a multipart body (`images` for classify, `image` for segment);
`labels` and `templates` are then repeated form fields.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.gateway.schemas.common import ADAPTER_REF_PATTERN, AdapterUsed

TEMPLATES_DESCRIPTION = (
    "Prompt templates, each with one `{}` for the label; a label's text embedding is the normalised mean over its "
    "prompts. Default: the 9 templates of the official zero-shot protocol (`itap of a {}.`, ...)."
)


class ZeroShotOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[str] = Field(description='Label names, e.g. ["cat", "dog"]')
    templates: list[str] | None = Field(None, description=TEMPLATES_DESCRIPTION)
    model: str | None = Field(None, description="Served model name; omitted means the served model")
    adapter: str | None = Field(
        None,
        pattern=ADAPTER_REF_PATTERN,
        description="`name` or `name@version`; applied to the towers the adapter adapts (image, text or both)",
    )


class ClassifyOptions(ZeroShotOptions):
    resolution: int | None = Field(None, description="Square input size; one of the served resolutions")
    temperature: float | None = Field(
        None,
        ge=1e-4,  # cos / t stays finite in float32 (a smaller t overflows the softmax into NaN)
        le=100,
        description="Softmax temperature of `softmax(cos / temperature)`; omitted: the model's own "
        "(`classify_temperature` in GET /v1/models; 0.01 for the official checkpoints' scale)",
    )


class ClassifyRequest(ClassifyOptions):
    images: list[str] = Field(description="Base64-encoded image files; data URIs accepted")


class Classification(BaseModel):
    object: Literal["classification"] = "classification"
    index: int
    label: str = Field(description="The most probable label")
    probabilities: list[float] = Field(description="softmax(cos / temperature), in the order of `labels`")


class ClassifyUsage(BaseModel):
    images: int
    cached_images: int
    prompts: int
    cached_prompts: int


class ClassifyResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Classification]
    labels: list[str]
    model: str
    adapter: AdapterUsed | None = None
    resolution: int
    temperature: float = Field(description="The temperature used (the request's, else the model's)")
    usage: ClassifyUsage


class SegmentOptions(ZeroShotOptions):
    mode: Literal["whole", "slide"] = Field(
        "whole",
        description="whole: one pass over the image resized to window x window; slide: short side resized to the "
        "window, then overlapping windows (the official evaluation protocol)",
    )
    window: int | None = Field(None, description="Window side in pixels; one of the served resolutions")
    stride: int | None = Field(
        None, ge=1, description="Slide mode only (refused with whole): window step in pixels (default 3/4 window)"
    )


class SegmentRequest(SegmentOptions):
    image: str = Field(description="A base64-encoded image file; data URIs accepted")


class LabelMap(BaseModel):
    format: Literal["png"] = "png"
    width: int
    height: int
    bit_depth: Literal[8, 16] = Field(description="8 for up to 256 labels, else 16")
    data: str = Field(description="base64 of a grayscale PNG whose pixel values are indices into `labels`")


class LabelShare(BaseModel):
    index: int
    label: str
    pixel_share: float = Field(description="Fraction of the image's pixels assigned to this label")


class SegmentUsage(BaseModel):
    windows: int
    prompts: int
    cached_prompts: int


class SegmentResponse(BaseModel):
    object: Literal["segmentation"] = "segmentation"
    label_map: LabelMap
    labels: list[LabelShare]
    mode: Literal["whole", "slide"]
    window: int
    stride: int | None = None
    model: str
    adapter: AdapterUsed | None = None
    usage: SegmentUsage
