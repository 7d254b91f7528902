"""An independent float64 numpy implementation of TIPSv2 inference, from the official description only.

Nothing here calls `training.tipsv2`: the towers are spelled out from the official sources (DINOv2's ViT as built by
`pytorch/run_image_encoder_inference.py`, `pytorch/text_encoder.py`, the value-attention function of the zero-shot
notebooks), with weights taken from a dict of official-layout arrays. All arithmetic is float64. (The official
text position table is computed in float32; this one is exact, which differs from it by at most 3e-6 and moves the
pooled text embedding by about 4e-8 relative.)
"""

from __future__ import annotations

import math

import numpy as np

Arrays = dict[str, np.ndarray]
_erf = np.vectorize(math.erf)


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return x @ weight.T + bias


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU of `nn.GELU()`."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def attention(x: np.ndarray, w_in, b_in, w_out, b_out, heads: int, key_valid: np.ndarray | None = None) -> np.ndarray:
    """Multi-head self-attention with a fused (3D, D) input projection ordered q, k, v; padded keys excluded."""
    B, N, D = x.shape
    q, k, v = (
        part.reshape(B, N, heads, D // heads).transpose(0, 2, 1, 3) for part in np.split(linear(x, w_in, b_in), 3, -1)
    )
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D // heads)
    if key_valid is not None:
        scores = np.where(key_valid[:, None, None, :], scores, -np.inf)
    return linear((softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(B, N, D), w_out, b_out)


def antialiased_bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) weights of `interpolate(mode="bilinear", antialias=True, align_corners=False)` along one axis:
    a triangle filter centred on each output pixel, widened by the scale when downsampling, normalised (PIL's
    resampling, which torch's antialiased path reproduces)."""
    scale = in_size / out_size
    support = max(scale, 1.0)
    weights = np.zeros((out_size, in_size))
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), in_size)
        taps = np.maximum(0.0, 1.0 - np.abs((np.arange(lo, hi) + 0.5 - center) / support))
        weights[i, lo:hi] = taps / taps.sum()
    return weights


def position_table(pos_embed: np.ndarray, grid_h: int, grid_w: int) -> np.ndarray:
    """(1 + gh*gw, D): CLS position, then the patch table resized (antialiased bilinear) to the grid."""
    native = math.isqrt(pos_embed.shape[1] - 1)
    table = pos_embed[0, 1:].reshape(native, native, -1)
    rows, cols = antialiased_bilinear_matrix(native, grid_h), antialiased_bilinear_matrix(native, grid_w)
    resized = np.einsum("ai,ijd,bj->abd", rows, table, cols).reshape(grid_h * grid_w, -1)
    return np.concatenate([pos_embed[0, :1], resized])


def vision_block(x: np.ndarray, a: Arrays, i: int, heads: int, value_path: bool = False) -> np.ndarray:
    p = f"blocks.{i}."
    h = layer_norm(x, a[p + "norm1.weight"], a[p + "norm1.bias"], 1e-6)
    if value_path:  # MaskCLIP: the value projection replaces attention, no mixing between tokens
        D = x.shape[-1]
        w_v, b_v = a[p + "attn.qkv.weight"][2 * D :], a[p + "attn.qkv.bias"][2 * D :]
        mixed = linear(linear(h, w_v, b_v), a[p + "attn.proj.weight"], a[p + "attn.proj.bias"])
    else:
        mixed = attention(
            h,
            a[p + "attn.qkv.weight"],
            a[p + "attn.qkv.bias"],
            a[p + "attn.proj.weight"],
            a[p + "attn.proj.bias"],
            heads,
        )
    x = x + mixed * a[p + "ls1.gamma"]
    h = layer_norm(x, a[p + "norm2.weight"], a[p + "norm2.bias"], 1e-6)
    if p + "mlp.w12.weight" in a:  # DINOv2's SwiGLUFFNFused (g/14): silu(first half) * second half
        gate, up = np.split(linear(h, a[p + "mlp.w12.weight"], a[p + "mlp.w12.bias"]), 2, axis=-1)
        mlp = linear(gate / (1.0 + np.exp(-gate)) * up, a[p + "mlp.w3.weight"], a[p + "mlp.w3.bias"])
    else:
        hidden = gelu(linear(h, a[p + "mlp.fc1.weight"], a[p + "mlp.fc1.bias"]))
        mlp = linear(hidden, a[p + "mlp.fc2.weight"], a[p + "mlp.fc2.bias"])
    return x + mlp * a[p + "ls2.gamma"]


def embed(a: Arrays, pixels: np.ndarray) -> np.ndarray:
    """(B, 3, H, W) -> the tokens the first block sees, [CLS1 + position, CLS2, patches + positions]: (B, 2 + N, D)."""
    B, C, H, W = pixels.shape
    P, D = 14, a["cls_token"].shape[-1]
    gh, gw = H // P, W // P
    patches = pixels.reshape(B, C, gh, P, gw, P).transpose(0, 2, 4, 1, 3, 5).reshape(B, gh * gw, C * P * P)
    tokens = linear(patches, a["patch_embed.proj.weight"].reshape(D, -1), a["patch_embed.proj.bias"])
    positions = position_table(a["pos_embed"], gh, gw)
    cls1 = np.broadcast_to(a["cls_token"][0] + positions[:1], (B, 1, D))
    cls2 = np.broadcast_to(a["register_tokens"][0], (B, 1, D))  # the register token: no position
    return np.concatenate([cls1, cls2, tokens + positions[1:]], axis=1)


def intermediate_layers(a: Arrays, pixels: np.ndarray, layers: list[int], heads: int) -> list[tuple[np.ndarray, ...]]:
    """The official `get_intermediate_layers(n=layers, reshape=True, return_class_token=True, norm=True)`, reordered
    (CLS, patches) as the decoder notebook does: per layer, the block's output through the final norm, split into
    CLS1 (B, D) and the patch tokens as a (B, D, h, w) map."""
    a = {k: v.astype(np.float64) for k, v in a.items()}
    B, _, H, W = pixels.shape
    x = embed(a, pixels)
    out = []
    for i in range(max(layers) + 1):
        x = vision_block(x, a, i, heads)
        if i in layers:
            normed = layer_norm(x, a["norm.weight"], a["norm.bias"], 1e-6)
            patches = normed[:, 2:].reshape(B, H // 14, W // 14, -1).transpose(0, 3, 1, 2)
            out.append((normed[:, 0], patches))
    return out


def vision_forward(a: Arrays, pixels: np.ndarray, depth: int, heads: int) -> dict[str, np.ndarray]:
    """(B, 3, H, W) -> cls1 (B, D), cls2 (B, D), patches (B, N, D), dense (B, N, D) (value path, last block)."""
    a = {k: v.astype(np.float64) for k, v in a.items()}
    x = embed(a, pixels)
    for i in range(depth - 1):
        x = vision_block(x, a, i, heads)
    final = layer_norm(vision_block(x, a, depth - 1, heads), a["norm.weight"], a["norm.bias"], 1e-6)
    dense = layer_norm(vision_block(x, a, depth - 1, heads, value_path=True), a["norm.weight"], a["norm.bias"], 1e-6)
    return {"cls1": final[:, 0], "cls2": final[:, 1], "patches": final[:, 2:], "dense": dense[:, 2:]}


def sinusoid_table(length: int, dim: int) -> np.ndarray:
    """The official `PositionalEmbedding`: D/2 timescales geometric from 1 to 1e4, sin in the first half, cos in the
    second (not interleaved)."""
    n = dim // 2
    inv_timescales = np.exp(np.arange(n) * -(math.log(1e4) / max(n - 1, 1)))
    scaled = np.arange(length)[:, None] * inv_timescales[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1)


def text_forward(a: Arrays, ids: np.ndarray, depth: int, heads: int) -> np.ndarray:
    """(B, L) ids, 0 = padding -> (B, D): masked mean of the final-norm states."""
    a = {k: v.astype(np.float64) for k, v in a.items() if k != "temperature"}
    D = a["token_embedding.weight"].shape[1]
    valid = ids != 0
    mask = valid[..., None].astype(np.float64)
    x = a["token_embedding.weight"][ids] * math.sqrt(D) + sinusoid_table(ids.shape[1], D)
    for i in range(depth):
        p = f"transformer.resblocks.{i}."
        h = layer_norm(x, a[p + "ln_1.weight"], a[p + "ln_1.bias"], 1e-5)
        x = x + attention(
            h,
            a[p + "attn.in_proj_weight"],
            a[p + "attn.in_proj_bias"],
            a[p + "attn.out_proj.weight"],
            a[p + "attn.out_proj.bias"],
            heads,
            key_valid=valid,
        )
        h = layer_norm(x, a[p + "ln_2.weight"], a[p + "ln_2.bias"], 1e-5)
        hidden = np.maximum(linear(h, a[p + "mlp.c_fc.weight"], a[p + "mlp.c_fc.bias"]), 0.0) * mask
        x = x + linear(hidden, a[p + "mlp.c_proj.weight"], a[p + "mlp.c_proj.bias"]) * mask
    x = layer_norm(x, a["ln_final.weight"], a["ln_final.bias"], 1e-5)
    return (x * mask).sum(1) / (mask.sum(1) + 1e-8)
