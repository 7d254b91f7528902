"""Raw encoder outputs for image files and texts: the library side of `tipsv2 encode`.

Images are preprocessed as the official inference script does (`preprocess`: square bilinear resize, [0, 1], no
normalisation); texts are tokenised as the official tokenizer does. Outputs are the towers' raw outputs (after the
final norm, before any L2 normalisation), float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from training.tipsv2.decoding import ImageDecodeError, decode_image
from training.tipsv2.model import TIPSv2
from training.tipsv2.preprocess import check_resolution, resize_uint8, to_model_input
from training.tipsv2.tokenizer import Tokenizer

OUTPUT_KEYS = ("image_cls", "image_cls2", "image_patch_tokens", "text_embeddings")


def load_image_file(path: str | Path, resolution: int, jpeg_draft: bool = True) -> np.ndarray:
    """An image file -> float32 (3, resolution, resolution) model input, decoded as the gateway decodes (rules in
    `decoding`; `jpeg_draft` as the gateway's TIPS_LIMITS__JPEG_DRAFT); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    try:
        image = decode_image(path.read_bytes(), min_size=resolution if jpeg_draft else None)
    except ImageDecodeError as exc:
        raise type(exc)(f"{path}: {exc}") from exc
    return to_model_input(resize_uint8(image, resolution))


@torch.no_grad()
def encode_images(model: TIPSv2, pixels: np.ndarray, batch_size: int = 8) -> dict[str, np.ndarray]:
    """(N, 3, H, W) model inputs -> `image_cls` (N, D), `image_cls2` (N, D), `image_patch_tokens` (N, h, w, D)."""
    N, _, H, W = pixels.shape
    patch, D = model.cfg.vision_cfg.patch_size, model.cfg.embed_dim
    out = {
        "image_cls": np.zeros((N, D), np.float32),
        "image_cls2": np.zeros((N, D), np.float32),
        "image_patch_tokens": np.zeros((N, H // patch, W // patch, D), np.float32),
    }
    for start in range(0, N, batch_size):
        features = model.encode_image(torch.from_numpy(pixels[start : start + batch_size]))
        rows = slice(start, start + len(features.cls1))
        out["image_cls"][rows] = features.cls1.float().numpy()
        out["image_cls2"][rows] = features.cls2.float().numpy()
        out["image_patch_tokens"][rows] = features.patch_tokens.float().numpy().reshape(-1, H // patch, W // patch, D)
    return out


@torch.no_grad()
def encode_texts(model: TIPSv2, tokenizer: Tokenizer, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Texts -> `text_embeddings` (M, D) float32, the masked mean of the final-norm token states."""
    out = np.zeros((len(texts), model.cfg.embed_dim), np.float32)
    ids, _ = tokenizer(list(texts))
    for start in range(0, len(texts), batch_size):
        chunk = torch.from_numpy(ids[start : start + batch_size].astype(np.int64))
        out[start : start + len(chunk)] = model.encode_text(chunk).float().numpy()
    return out


def load_images(image_files: Sequence[str | Path], resolution: int, jpeg_draft: bool = True) -> np.ndarray:
    """Image files -> float32 (N, 3, resolution, resolution) model inputs; the first bad file raises, naming it."""
    check_resolution(resolution)
    pixels = np.zeros((len(image_files), 3, resolution, resolution), np.float32)
    for i, path in enumerate(image_files):
        pixels[i] = load_image_file(path, resolution, jpeg_draft)
    return pixels


def encode(
    model: TIPSv2, tokenizer: Tokenizer | None, pixels: np.ndarray, texts: Sequence[str]
) -> dict[str, np.ndarray]:
    """All four outputs of the CLI contract (`OUTPUT_KEYS`); no images or no texts give arrays with a leading 0."""
    if texts and tokenizer is None:
        raise ValueError("texts need a tokenizer")
    arrays = encode_images(model, pixels)
    no_texts = np.zeros((0, model.cfg.embed_dim), np.float32)
    arrays["text_embeddings"] = encode_texts(model, tokenizer, texts) if tokenizer and texts else no_texts
    return arrays
