"""The official TIPSv2 PyTorch checkpoint layout, written from the official sources, not from `training.tipsv2`.

Vision: DINOv2's `DinoVisionTransformer` built as `pytorch/run_image_encoder_inference.py` builds it (patch 14,
`num_register_tokens=1`, `block_chunks=0`, `init_values=1.0`, `img_size=448`, `ffn_layer='swiglu'` for g only):
parameters in registration order cls_token, pos_embed, register_tokens, mask_token, then patch_embed, blocks, norm.
Text: `pytorch/text_encoder.py` (`nn.MultiheadAttention`, `MlpBlockWithMask`, `ln_final`) plus the scalar
`temperature` of the text `.npz`. Sizes: `get_config` of `pytorch/run_text_encoder_inference.py` and the DINOv2
constructors (`vit_base`, `vit_large`, `vit_so400m` with mlp_ratio 4304/1152, `vit_giant2`).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Layout = dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class Geometry:
    width: int
    vision_depth: int
    vision_ffn: str  # "mlp" (fc1/fc2) or "swiglu" (fused w12/w3)
    vision_hidden: int  # fc1 rows, or the SwiGLU hidden width after DINOv2's 2/3 rounding
    text_depth: int
    text_mlp: int
    grid: int = 32  # 448 / 14
    vocab: int = 32000


OFFICIAL = {
    "b14": Geometry(768, 12, "mlp", 3072, 12, 3072),
    "l14": Geometry(1024, 24, "mlp", 4096, 12, 4096),
    "so14": Geometry(1152, 27, "mlp", 4304, 27, 4304),
    "g14": Geometry(1536, 40, "swiglu", 4096, 12, 6144),  # (int(6144 * 2 / 3) + 7) // 8 * 8 = 4096
}
TINY = Geometry(64, 4, "mlp", 256, 2, 256, grid=16, vocab=1000)  # model_configs/tipsv2-tiny.json


def vision_layout(g: Geometry) -> Layout:
    D = g.width
    keys: Layout = {
        "cls_token": (1, 1, D),
        "pos_embed": (1, g.grid * g.grid + 1, D),
        "register_tokens": (1, 1, D),
        "mask_token": (1, D),
        "patch_embed.proj.weight": (D, 3, 14, 14),
        "patch_embed.proj.bias": (D,),
    }
    for i in range(g.vision_depth):
        b = f"blocks.{i}."
        keys |= {b + "norm1.weight": (D,), b + "norm1.bias": (D,)}
        keys |= {b + "attn.qkv.weight": (3 * D, D), b + "attn.qkv.bias": (3 * D,)}
        keys |= {b + "attn.proj.weight": (D, D), b + "attn.proj.bias": (D,), b + "ls1.gamma": (D,)}
        keys |= {b + "norm2.weight": (D,), b + "norm2.bias": (D,)}
        if g.vision_ffn == "mlp":
            keys |= {b + "mlp.fc1.weight": (g.vision_hidden, D), b + "mlp.fc1.bias": (g.vision_hidden,)}
            keys |= {b + "mlp.fc2.weight": (D, g.vision_hidden), b + "mlp.fc2.bias": (D,)}
        else:
            keys |= {b + "mlp.w12.weight": (2 * g.vision_hidden, D), b + "mlp.w12.bias": (2 * g.vision_hidden,)}
            keys |= {b + "mlp.w3.weight": (D, g.vision_hidden), b + "mlp.w3.bias": (D,)}
        keys[b + "ls2.gamma"] = (D,)
    return keys | {"norm.weight": (D,), "norm.bias": (D,)}


def text_layout(g: Geometry) -> Layout:
    """The text tower's `state_dict` keys (without the `.npz`'s extra `temperature`)."""
    D = g.width
    keys: Layout = {"token_embedding.weight": (g.vocab, D)}
    for i in range(g.text_depth):
        b = f"transformer.resblocks.{i}."
        keys |= {b + "attn.in_proj_weight": (3 * D, D), b + "attn.in_proj_bias": (3 * D,)}
        keys |= {b + "attn.out_proj.weight": (D, D), b + "attn.out_proj.bias": (D,)}
        keys |= {b + "ln_1.weight": (D,), b + "ln_1.bias": (D,)}
        keys |= {b + "mlp.c_fc.weight": (g.text_mlp, D), b + "mlp.c_fc.bias": (g.text_mlp,)}
        keys |= {b + "mlp.c_proj.weight": (D, g.text_mlp), b + "mlp.c_proj.bias": (D,)}
        keys |= {b + "ln_2.weight": (D,), b + "ln_2.bias": (D,)}
    return keys | {"ln_final.weight": (D,), "ln_final.bias": (D,)}


def random_arrays(layout: Layout, seed: int) -> dict[str, np.ndarray]:
    """Plausible float32 values for every key: unit-ish gains, small weights, and gains/biases far from 1/0 so that
    every parameter changes the output (a reference that forgot one would disagree)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for key, shape in layout.items():
        if key.endswith(
            ("norm1.weight", "norm2.weight", "norm.weight", "ln_1.weight", "ln_2.weight", "ln_final.weight")
        ):
            value = 1.0 + 0.2 * rng.standard_normal(shape)
        elif key.endswith(".gamma"):
            value = rng.uniform(0.5, 1.5, shape)
        elif key == "token_embedding.weight":
            value = rng.standard_normal(shape) / np.sqrt(shape[1])
        elif key in ("cls_token", "register_tokens", "pos_embed", "mask_token"):
            value = 0.5 * rng.standard_normal(shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
            value = rng.standard_normal(shape) * (1.0 / np.sqrt(fan_in) if len(shape) > 1 else 0.1)
        arrays[key] = value.astype(np.float32)
    return arrays


def fast_arrays(layout: Layout, row_shift: int = 7) -> dict[str, np.ndarray]:
    """Random-looking float32 arrays for big layouts (B/14 in a test) at no memory cost: read-only views into one
    short random vector, each row `row_shift` elements further on (so rows differ). `np.savez` streams them."""
    longest = max(int(np.prod(shape[:-1])) * row_shift + shape[-1] for shape in layout.values() if shape)
    pattern = (np.random.default_rng(0).standard_normal(longest) * 0.02).astype(np.float32)
    arrays = {}
    for key, shape in layout.items():
        strides = [pattern.itemsize] * len(shape)
        for axis in range(len(shape) - 2, -1, -1):
            strides[axis] = row_shift * pattern.itemsize * int(np.prod(shape[axis + 1 : -1]))
        arrays[key] = np.lib.stride_tricks.as_strided(pattern, shape, strides, writeable=False)
    return arrays


def write_official(directory: Path, tag: str, vision: dict[str, np.ndarray], text: dict[str, np.ndarray]) -> None:
    """`tips_v2_oss_{tag}_{vision,text}.npz`, the text file with a scalar `temperature` as the official one."""
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / f"tips_v2_oss_{tag}_vision.npz", **vision)
    np.savez(directory / f"tips_v2_oss_{tag}_text.npz", **text, temperature=np.asarray(0.0048, np.float32))


def write_header_only_npz(path: Path, layout: Layout) -> None:
    """An `.npz` whose members carry only `.npy` headers (shapes, no data): stands in for a multi-GB checkpoint
    where only names and shapes are inspected."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, shape in layout.items():
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
            archive.writestr(key + ".npy", header.getvalue())  # the header starts with the .npy magic
