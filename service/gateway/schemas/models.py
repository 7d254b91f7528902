"""`GET /v1/models`: what this gateway serves, in OpenAI's list shape, with what a client needs to call it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Modality = Literal["text", "image"]


class ImageInput(BaseModel):
    resolutions: list[int] = Field(description="Served square input sizes (`resolution`, segmentation `window`)")
    default_resolution: int
    patch_size: int = Field(description="Patch tokens form a (resolution / patch_size)² grid")


class TextInput(BaseModel):
    max_tokens: int = Field(description="Tokens per text; longer texts are cut (or refused with truncate=false)")


class ServedModelCard(BaseModel):
    id: str = Field(description="The name to send as `model`")
    object: Literal["model"] = "model"
    created: int = Field(0, description="OpenAI field; 0: not tracked")
    owned_by: str = "tipsv2-serve"
    version: str = Field(description="Digest of the weights (changes with every new model build)")
    embedding_dim: int = Field(description="Width of every embedding (text, CLS1, CLS2, patch tokens)")
    modalities: list[Modality]
    image: ImageInput
    text: TextInput
    classify_temperature: float = Field(description="Default `temperature` of /v1/classify (the model's own)")
    adapters: list[Modality] = Field(
        description="Towers that accept per-tenant AdaLink adapters (`adapter`); empty when uploads are disabled"
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ServedModelCard]
