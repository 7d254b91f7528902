"""The served Triton models: their names, tensors and dtypes, and the parameters that describe the served model.

Whatever runs them (one fused torch model per modality, or an ensemble of an embedding stage and a trunk), the
gateway sees the same two models:

    tipsv2_text   input_ids INT32 [L], adapter BYTES [1]      -> text_embedding FP32 [D]
    tipsv2_image  pixels UINT8 [S, S, 3], adapter BYTES [1]   -> cls1, cls2 FP32 [D], patch_tokens, dense_tokens
                                                                   FP32 [N, D]

(per row; Triton adds the batch axis). `adapter` holds one adapter id per row, "" for the base model. Between an
ensemble's embedding stage and its trunk (and into every exported trunk) travel `embeddings` FP32 [L, D] and
`token_mask` FP32 [L] (text), `tokens` FP32 [2 + N, D] (image). The text and image models carry the served model's
description as string parameters (`ServedModel.parameters`), which the gateway reads back (`from_parameters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

TEXT_MODEL = "tipsv2_text"
IMAGE_MODEL = "tipsv2_image"
ADAPTER = "adapter"
MODELS = {"text": TEXT_MODEL, "image": IMAGE_MODEL}
INPUTS = {"text": "input_ids", "image": "pixels"}  # the data input of each modality, beside `adapter`
OUTPUTS = {"text": ("text_embedding",), "image": ("cls1", "cls2", "patch_tokens", "dense_tokens")}
TRUNK_INPUTS = {"text": ("embeddings", "token_mask"), "image": ("tokens",)}
# Triton's dtype names (config.pbtxt adds `TYPE_`, the clients use them as they are) and their numpy types.
DTYPES: dict[str, type] = {"INT32": np.int32, "UINT8": np.uint8, "FP32": np.float32, "BYTES": np.object_}


@dataclass(frozen=True)
class Tensor:
    """One input or output of a served model: name, Triton dtype, dims of one row (-1: any size)."""

    name: str
    dtype: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class ModelTensors:
    """What one served model takes and gives."""

    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    trunk_inputs: tuple[Tensor, ...]  # what its embedding stage hands its trunk, in an ensemble


def model_tensors(embed_dim: int, text_len: int) -> dict[str, ModelTensors]:
    """{"text": ..., "image": ...} for a model of width `embed_dim` reading `text_len` tokens."""
    D, L = embed_dim, text_len
    adapter = Tensor(ADAPTER, "BYTES", (1,))
    text = ModelTensors(
        TEXT_MODEL,
        (Tensor(INPUTS["text"], "INT32", (L,)), adapter),
        (Tensor("text_embedding", "FP32", (D,)),),
        (Tensor("embeddings", "FP32", (L, D)), Tensor("token_mask", "FP32", (L,))),
    )
    image = ModelTensors(
        IMAGE_MODEL,
        (Tensor(INPUTS["image"], "UINT8", (-1, -1, 3)), adapter),
        tuple(Tensor(name, "FP32", (D,) if name.startswith("cls") else (-1, D)) for name in OUTPUTS["image"]),
        (Tensor("tokens", "FP32", (-1, D)),),
    )
    return {"text": text, "image": image}


def triton_dtype(array: np.ndarray) -> str:
    """The Triton dtype name of a numpy array's dtype; KeyError for one no served tensor has."""
    by_numpy: dict[np.dtype, str] = {np.dtype(t): name for name, t in DTYPES.items() if name != "BYTES"}
    return by_numpy[array.dtype]


@dataclass(frozen=True)
class ServedModel:
    """What the gateway needs to know about the served model; written as the text and image models' parameters."""

    model_name: str  # e.g. "tipsv2-tiny"
    model_id: str  # digest of the weights: the model version in cache keys and adapter metadata
    embed_dim: int
    text_len: int
    patch_size: int
    resolutions: tuple[int, ...]  # served image sizes (square); the first is the default
    temperature: float

    @property
    def default_resolution(self) -> int:
        return self.resolutions[0]

    def parameters(self) -> dict[str, str]:
        """The model parameters (config.pbtxt `parameters`, all strings) that describe it."""
        return {
            "model_name": self.model_name,
            "model_id": self.model_id,
            "embed_dim": str(self.embed_dim),
            "text_len": str(self.text_len),
            "patch_size": str(self.patch_size),
            "resolutions": ",".join(map(str, self.resolutions)),
            "temperature": repr(self.temperature),
        }

    @staticmethod
    def fields_from_parameters(params: Mapping[str, str]) -> dict[str, object]:
        """`parameters()` read back, as keyword arguments; KeyError or ValueError for a missing or bad one."""
        return {
            "model_name": params["model_name"],
            "model_id": params["model_id"],
            "embed_dim": int(params["embed_dim"]),
            "text_len": int(params["text_len"]),
            "patch_size": int(params["patch_size"]),
            "resolutions": tuple(int(r) for r in params["resolutions"].split(",")),
            "temperature": float(params["temperature"]),
        }


SERVED_FIELDS = tuple(f.name for f in fields(ServedModel))
