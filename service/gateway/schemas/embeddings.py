"""`POST /v1/embeddings`: OpenAI-compatible text embeddings, plus `adapter`, `normalize` and `truncate`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.gateway.schemas.common import ADAPTER_REF_PATTERN, AdapterUsed, EncodingFormat


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str | list[str] = Field(description="A text or a list of texts")
    model: str | None = Field(None, description="Served model name; omitted means the served model")
    encoding_format: EncodingFormat = "float"
    adapter: str | None = Field(None, pattern=ADAPTER_REF_PATTERN, description="`name` or `name@version`")
    normalize: bool = Field(True, description="L2-normalise the vectors (cosine similarity = dot product)")
    truncate: bool = Field(
        True,
        description="Cut texts beyond the model's 64 tokens (as the official code does); false refuses them with 400",
    )
    dimensions: int | None = Field(None, description="Accepted for OpenAI compatibility; must equal the model width")
    user: str | None = Field(None, max_length=256, description="Accepted for OpenAI compatibility; unused")


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    adapter: AdapterUsed | None = None
    usage: Usage
