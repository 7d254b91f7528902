"""Zero-shot classification and segmentation math in numpy, equal to `training.tipsv2.zeroshot` (torch).

The conventions are the reference's, so that the gateway returns what the model library computes:
- L2 normalisation is `x / max(||x||, 1e-12)`;
- a label's embedding is the mean of its L2-normalised prompt embeddings, L2-normalised again;
- classification is `softmax(cos(image, label) / temperature)` over labels;
- segmentation softmaxes raw cosine maps (no temperature), and "bilinear" is
  `torch.nn.functional.interpolate(mode="bilinear", align_corners=False)` without antialiasing.
Label maps at the input's resolution are computed in bands of rows, so that a large image with many labels never
holds a (labels, height, width) array at once.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from training.tipsv2.windows import Window

EPS = 1e-12
BAND_ELEMENTS = 1 << 22  # labels x rows x width per band of a label map (16 MiB of float32)


def l2_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    norms = np.linalg.norm(x, axis=axis, keepdims=True)
    return np.asarray(x / np.maximum(norms, EPS), dtype=np.float32)


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=axis, keepdims=True), dtype=np.float32)


def label_embeddings(prompt_vectors: np.ndarray, n_labels: int, n_templates: int) -> np.ndarray:
    """(C * T, D) prompt embeddings, label-major (all templates of label 0 first) -> (C, D) unit label vectors."""
    per_template = l2_normalize(prompt_vectors).reshape(n_labels, n_templates, -1)
    return l2_normalize(per_template.mean(axis=1))


def classify(image_embeddings: np.ndarray, label_vectors: np.ndarray, temperature: float) -> np.ndarray:
    """(N, D), (C, D) -> (N, C) probabilities `softmax(cos / temperature)`."""
    cosine = l2_normalize(image_embeddings) @ l2_normalize(label_vectors).T
    return softmax(cosine / np.float32(temperature), axis=-1)


def cosine_maps(dense_tokens: np.ndarray, grid: tuple[int, int], label_vectors: np.ndarray) -> np.ndarray:
    """(N, h * w, D) value-path patch tokens -> (N, C, h, w) cosine similarity with each unit label vector."""
    features = l2_normalize(dense_tokens)
    maps = np.einsum("cd,npd->ncp", l2_normalize(label_vectors), features)
    return np.ascontiguousarray(maps.reshape(maps.shape[0], maps.shape[1], *grid), dtype=np.float32)


def bilinear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of torch's bilinear resampling (align_corners=False) along one axis."""
    scale = np.float32(in_size / out_size)
    source = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    source = np.maximum(source, np.float32(0.0))
    lower = source.astype(np.int64)
    upper = np.minimum(lower + 1, in_size - 1)
    high = (source - lower).astype(np.float32)
    return lower, upper, np.float32(1.0) - high, high


def resize_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) -> (C, *size), as torch's `interpolate(mode="bilinear", align_corners=False)`."""
    return _resize_rows(maps, size, 0, size[0])


def _resize_rows(maps: np.ndarray, size: tuple[int, int], first: int, last: int) -> np.ndarray:
    """Rows [first, last) of `resize_bilinear(maps, size)`."""
    rows = bilinear_taps(maps.shape[1], size[0])
    cols = bilinear_taps(maps.shape[2], size[1])
    top, bottom, w_top, w_bottom = (a[first:last] for a in rows)
    left, right, w_left, w_right = cols
    # Width first on the two source rows each output row needs, then blend rows: torch's order of operations.
    upper = maps[:, top][:, :, left] * w_left + maps[:, top][:, :, right] * w_right
    lower = maps[:, bottom][:, :, left] * w_left + maps[:, bottom][:, :, right] * w_right
    return np.asarray(upper * w_top[:, None] + lower * w_bottom[:, None], dtype=np.float32)


def label_map(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """argmax over labels of `resize_bilinear(scores, size)`, (C, h, w) -> (H, W) int64, in bands of rows."""
    labels, height, width = scores.shape[0], size[0], size[1]
    band = max(1, BAND_ELEMENTS // max(1, labels * width))
    out = np.empty((height, width), dtype=np.int64)
    for first in range(0, height, band):
        last = min(height, first + band)
        out[first:last] = _resize_rows(scores, size, first, last).argmax(axis=0)
    return out


def slide_probabilities(window_maps: np.ndarray, windows: Sequence[Window], size: tuple[int, int]) -> np.ndarray:
    """Average of the windows' class probabilities over the resized image.

    window_maps: (n_windows, C, h, w) cosine maps; each is upsampled to its window's size and softmaxed over
    classes, then overlapping windows are averaged. Returns (C, *size).
    """
    labels = window_maps.shape[1]
    probs = np.zeros((labels, *size), dtype=np.float32)
    counts = np.zeros(size, dtype=np.float32)
    for cosine, w in zip(window_maps, windows, strict=True):
        window_probs = softmax(resize_bilinear(cosine, (w.bottom - w.top, w.right - w.left)), axis=0)
        probs[:, w.top : w.bottom, w.left : w.right] += window_probs
        counts[w.top : w.bottom, w.left : w.right] += 1
    probs /= counts
    return probs


def pixel_shares(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Fraction of the map's pixels assigned to each label, (n_labels,)."""
    counts = np.bincount(labels.ravel(), minlength=n_labels)
    return counts.astype(np.float64) / max(1, labels.size)


def encode_label_png(labels: np.ndarray, n_labels: int) -> bytes:
    """The label map as a grayscale PNG whose pixel values are label indices: 8-bit up to 256 labels, else 16-bit."""
    image = Image.fromarray(labels.astype(np.uint8 if n_labels <= 256 else np.uint16))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()
