"""Dense predictions for images: the library side of `tipsv2 dense`.

As the official decoder notebook: the image is resized to a square of the model's resolution (bilinear, [0, 1], no
normalisation: `preprocess`), the image tower runs once keeping its `dpt_layers`, and each requested head reads
them. Outputs come at the size the caller asks for (the CLI: the decoded image's own size), resized from the
decoder grid (8x the patch grid) as the official heads do: logits and depth bilinearly, normals by the notebook's
normalise / bicubic / normalise. Segmentation logits at a photo's full size would be C x H x W floats (7 GB for
150 classes at 12 MP), so the label map is the argmax of the same bilinear upsampling computed a few classes at a
time: exactly the argmax of the full tensor, at a bounded memory.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from training.tipsv2.dpt import DenseDecoder, resize, unit_normals
from training.tipsv2.heads import Task
from training.tipsv2.vision import VisionTransformer

LABEL_BUDGET = 1 << 24  # elements of upsampled logits held at once (64 MiB of float32)


@torch.no_grad()
def segmentation_labels(logits: torch.Tensor, size: tuple[int, int], budget: int = LABEL_BUDGET) -> torch.Tensor:
    """(B, C, h, w) decoder-grid logits -> (B, H, W) int64 argmax of their bilinear upsampling to `size`.

    Classes are upsampled in chunks and a running maximum is kept; ties keep the lower index, as `argmax` does.
    """
    B, C = logits.shape[:2]
    chunk = max(1, budget // max(1, B * size[0] * size[1]))
    best = torch.full((B, *size), -torch.inf, dtype=logits.dtype, device=logits.device)
    labels = torch.zeros((B, *size), dtype=torch.int64, device=logits.device)
    for start in range(0, C, chunk):
        values, index = resize(logits[:, start : start + chunk], size).max(dim=1)
        better = values > best
        best = torch.where(better, values, best)
        labels = torch.where(better, index + start, labels)
    return labels


@torch.no_grad()
def predict_dense(
    vision: VisionTransformer,
    decoders: Mapping[Task, DenseDecoder],
    pixels: torch.Tensor,
    size: tuple[int, int] | None = None,
) -> dict[Task, np.ndarray]:
    """(B, 3, R, R) model inputs -> per task, at `size` (default: the input's): `segmentation` (B, H, W) int64 class
    indices, `depth` (B, H, W) float32 metres, `normals` (B, H, W, 3) float32 unit vectors."""
    for task, decoder in decoders.items():
        if decoder.embed_dim != vision.cfg.embed_dim:
            raise ValueError(
                f"the {task} decoder reads width {decoder.embed_dim}, the image tower has {vision.cfg.embed_dim}"
            )
    size = size or (pixels.shape[-2], pixels.shape[-1])
    features = vision.intermediate_features(pixels)
    out: dict[Task, np.ndarray] = {}
    for task, decoder in decoders.items():
        if task == "segmentation":
            out[task] = segmentation_labels(decoder.head_output(features), size).cpu().numpy()
        elif task == "depth":
            out[task] = decoder(features, size)[:, 0].float().cpu().numpy()
        else:
            out[task] = unit_normals(decoder.head_output(features), size).permute(0, 2, 3, 1).float().cpu().numpy()
    return out
