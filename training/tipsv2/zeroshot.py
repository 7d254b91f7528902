"""Dense features and zero-shot tasks, computed as the official TIPSv2 code computes them.

Sources (google-deepmind/tips): `pytorch/TIPSv2_Segmentation.ipynb` and `pytorch/TIPS_zeroshot_segmentation.ipynb`
(value-path features, prompt averaging, whole / sliding-window prediction, mIoU); zero-shot classification as the
HF port's `Tipsv2Model` (cosine similarity divided by the checkpoint's temperature).

Numerical conventions, shared with the gateway's numpy implementation (which is tested against this module):
- L2 normalisation is `x / max(||x||_2, 1e-12)` (`torch.nn.functional.normalize`'s default eps).
- "bilinear" is `torch.nn.functional.interpolate(mode="bilinear", align_corners=False)` without antialiasing, as in
  the notebooks (used to upsample similarity maps and probabilities).
- Softmax over classes is applied to the raw cosine similarity in segmentation (no temperature), and to
  cosine / temperature in classification.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from training.tipsv2.model import TIPSv2, ZeroShotModel
from training.tipsv2.preprocess import resize_short_side, to_model_input
from training.tipsv2.prompts import TCL_TEMPLATES
from training.tipsv2.tokenizer import Tokenizer
from training.tipsv2.vision import VisionTransformer
from training.tipsv2.windows import Window, short_side_size, sliding_windows

SegmentMode = Literal["whole", "slide"]
MIOU_EPS = 1e-10  # the notebooks' `intersection / (union + 1e-10)`


@torch.no_grad()
def label_text_embeddings(
    model: ZeroShotModel,
    tokenizer: Tokenizer,
    labels: Sequence[str],
    templates: Sequence[str] = TCL_TEMPLATES,
    batch_size: int = 256,
) -> torch.Tensor:
    """One unit vector per label: the official prompt-ensemble protocol. Returns (C, D) in the model's dtype.

    For each label, every template is filled with `template.format(label)`, tokenised by `tokenizer` (ASCII
    lower-casing, 64 tokens, pad 0), encoded by the text tower, L2-normalised; the T normalised embeddings are
    averaged and the mean is L2-normalised again. With the default 9 TCL templates this is the class embedding
    of the official zero-shot segmentation notebooks (which tokenise without lower-casing; their labels and
    templates are lower case, so the ids are the same).
    """
    if not labels:
        raise ValueError("need at least one label")
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"templates must be non-empty and each contain '{{}}', got {list(templates)}")
    texts = [template.format(label) for label in labels for template in templates]
    ids, _ = tokenizer(texts)
    device = next(model.parameters()).device
    ids_t = torch.from_numpy(ids.astype(np.int64)).to(device)
    embeddings = torch.cat([model.encode_text(chunk) for chunk in torch.split(ids_t, batch_size)])
    per_template = F.normalize(embeddings, dim=-1).reshape(len(labels), len(templates), -1)
    return F.normalize(per_template.mean(dim=1), dim=-1)


def classify(image_embeddings: torch.Tensor, label_embeddings: torch.Tensor, temperature: float) -> torch.Tensor:
    """Zero-shot classification: `softmax(cos(image, label) / temperature)` over labels, (N, D), (C, D) -> (N, C).

    Both sides are L2-normalised here; `temperature` is the checkpoint's (`model.temperature`, e.g. 0.00479 for
    L/14). Which image embedding to pass (CLS1, CLS2) is the caller's choice; the official demo uses CLS1.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    cosine = F.normalize(image_embeddings, dim=-1) @ F.normalize(label_embeddings, dim=-1).T
    return (cosine / temperature).softmax(dim=-1)


@torch.no_grad()
def dense_features(model: TIPSv2 | VisionTransformer, pixels: torch.Tensor) -> torch.Tensor:
    """MaskCLIP value-path patch features of the last block: (N, 3, H, W) in [0, 1] -> (N, h, w, D).

    Blocks 0..L-2 run normally; in the last block attention is replaced by its value projection (no mixing between
    tokens), followed by the block's MLP and the final norm (the notebooks' `encode_image_value_attention`). If H or
    W is not a multiple of the patch size P, the batch is first resized up to the next multiples (bicubic,
    align_corners=False, no antialiasing) as the notebook does, so h = ceil(H / P) and w = ceil(W / P).
    The features are not normalised.
    """
    visual = model.visual if isinstance(model, TIPSv2) else model
    if pixels.ndim != 4 or pixels.shape[1] != 3:
        raise ValueError(f"pixels must be (N, 3, H, W), got {tuple(pixels.shape)}")
    patch = visual.cfg.patch_size
    N, _, H, W = pixels.shape
    h, w = math.ceil(H / patch), math.ceil(W / patch)
    if (H, W) != (h * patch, w * patch):
        pixels = F.interpolate(pixels, size=(h * patch, w * patch), mode="bicubic", align_corners=False)
    return visual.dense_features(pixels).reshape(N, h, w, -1)


@torch.no_grad()
def segment(
    model: TIPSv2,
    image: torch.Tensor | Image.Image,
    label_embeddings: torch.Tensor,
    mode: SegmentMode = "whole",
    window: int | None = None,
    stride: int | None = None,
    *,
    short_side: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-shot segmentation: (label map (H, W) int64, probabilities (C, H, W)) at the input's resolution.

    The official protocol (TIPSv2_Segmentation.ipynb), step by step:
    1. Resize (both modes) so the short side is `short_side`, the long side `int(short_side * long / short)`
       (`windows.short_side_size`). Default `short_side` = `window`, whose default is the model's native image
       size (448 for the official models, 224 for tiny): the notebooks resize to 448 and slide 448 windows
       (TIPSv2_Segmentation.ipynb exposes the two as `resize` and `side`). A PIL image is resized with PIL
       bicubic (the notebook's transform); a (3, H, W) float tensor in [0, 1] with
       `interpolate(mode="bicubic", antialias=True, align_corners=False)`, torchvision's tensor resize.
    2. Cosine maps: `dense_features` of the image (whole) or of each window (slide), L2-normalised per patch,
       dotted with the L2-normalised `label_embeddings` -> (C, h, w).
    3. whole: the cosine map is upsampled bilinearly straight to the input size (H, W) and softmaxed over classes.
       slide: windows of `window` x `window` pixels every `stride` pixels (`windows.sliding_windows`); each
       window's cosine map is upsampled bilinearly to the window's size and softmaxed over classes; overlapping
       windows are averaged; the averaged probabilities are upsampled bilinearly to (H, W).
       Defaults: `window` = the model's native image size, `stride` = 3/4 of the window (448 / 336 for the
       official models, as the notebooks; 224 / 168 for tiny).
    4. The label map is the argmax over classes (for whole mode this equals the notebook's argmax of the
       upsampled cosine map).
    The softmax is over the raw cosine similarities, scale 1, exactly `cos.softmax(dim=0)` in the notebook's
    `predict_slide`; the model's contrastive temperature is not applied. The scale matters only for how
    overlapping windows vote, and we keep the official one.
    """
    if mode not in ("whole", "slide"):
        raise ValueError(f"mode must be 'whole' or 'slide', got {mode!r}")
    window = model.cfg.vision_cfg.img_size if window is None else window
    stride = window * 3 // 4 if stride is None else stride
    short_side = window if short_side is None else short_side
    if min(window, stride, short_side) <= 0:
        raise ValueError(f"window, stride and short side must be positive, got {window}, {stride}, {short_side}")
    param = next(model.parameters())
    if label_embeddings.ndim != 2 or label_embeddings.shape[1] != model.cfg.embed_dim:
        raise ValueError(f"label_embeddings must be (C, {model.cfg.embed_dim}), got {tuple(label_embeddings.shape)}")
    pixels, size = _resized_input(image, short_side)
    pixels = pixels.to(param.device, param.dtype)
    labels = F.normalize(label_embeddings.to(param.device, param.dtype), dim=-1)
    if mode == "whole":
        probs = _bilinear(_cosine_maps(model, pixels[None], labels)[0], size).softmax(dim=0)
    else:
        probs = _bilinear(_slide(model, pixels, labels, window, stride), size)
    return probs.argmax(dim=0), probs


def _resized_input(image: torch.Tensor | Image.Image, short_side: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(3, h, w) float pixels with the short side resized, and the input's (H, W)."""
    if isinstance(image, Image.Image):
        rgb = image.convert("RGB")
        resized = resize_short_side(rgb, short_side)
        return torch.from_numpy(to_model_input(np.asarray(resized))), (rgb.height, rgb.width)
    if image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
        raise ValueError(f"image must be a (3, H, W) float tensor in [0, 1] or a PIL image, got {tuple(image.shape)}")
    H, W = image.shape[1:]
    new_size = short_side_size(H, W, short_side)
    if new_size == (H, W):
        return image, (H, W)
    scaled = F.interpolate(image[None], size=new_size, mode="bicubic", antialias=True, align_corners=False)
    return scaled[0], (H, W)


def _cosine_maps(model: TIPSv2, pixels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, C, h, w) cosine similarity of each patch's value-path feature with each label."""
    features = F.normalize(dense_features(model, pixels), dim=-1)
    return torch.einsum("cd,bhwd->bchw", labels, features)


def _bilinear(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(..., C, h, w) -> (..., C, *size), bilinear, align_corners=False, no antialiasing."""
    batched = maps if maps.ndim == 4 else maps[None]
    out = F.interpolate(batched, size=size, mode="bilinear", align_corners=False)
    return out if maps.ndim == 4 else out[0]


def _slide(
    model: TIPSv2, pixels: torch.Tensor, labels: torch.Tensor, side: int, stride: int, batch: int = 4
) -> torch.Tensor:
    """Averaged per-window class probabilities over the (resized) image: (3, H, W) -> (C, H, W)."""
    _, H, W = pixels.shape
    probs = pixels.new_zeros((labels.shape[0], H, W))
    counts = pixels.new_zeros((H, W))
    windows = sliding_windows(H, W, side, stride)
    for start in range(0, len(windows), batch):
        chunk: list[Window] = windows[start : start + batch]
        crops = torch.stack([pixels[:, w.top : w.bottom, w.left : w.right] for w in chunk])
        window_probs = _bilinear(_cosine_maps(model, crops, labels), (crops.shape[-2], crops.shape[-1])).softmax(dim=1)
        for w, p in zip(chunk, window_probs, strict=True):
            probs[:, w.top : w.bottom, w.left : w.right] += p
            counts[w.top : w.bottom, w.left : w.right] += 1
    return probs / counts


def confusion_matrix(
    pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts, rows = ground truth, columns = prediction; `ignore_index` pixels
    of `target` are left out. Sum these over a dataset and call `miou_from_confusion` for the dataset mIoU (the
    notebook's protocol)."""
    pred_t, target_t = torch.as_tensor(pred).long().flatten(), torch.as_tensor(target).long().flatten()
    if pred_t.shape != target_t.shape:
        raise ValueError(f"pred and target differ in size: {tuple(pred.shape)} vs {tuple(target.shape)}")
    valid = target_t != ignore_index
    pred_t, target_t = pred_t[valid], target_t[valid]
    for name, values in (("pred", pred_t), ("target", target_t)):
        if values.numel() and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} has labels outside [0, {num_classes}) (ignore label {ignore_index})")
    counts = torch.bincount(target_t * num_classes + pred_t, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def miou_from_confusion(confusion: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(mean IoU over classes present in prediction or ground truth, per-class IoU float64 with NaN for absent)."""
    confusion = confusion.double()
    intersection = confusion.diag()
    union = confusion.sum(dim=0) + confusion.sum(dim=1) - intersection
    present = union > 0
    iou = torch.where(present, intersection / (union + MIOU_EPS), torch.full_like(union, float("nan")))
    return (float(iou[present].mean()) if present.any() else float("nan")), iou


def miou(
    pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, num_classes: int, ignore_index: int = 255
) -> tuple[float, torch.Tensor]:
    """mIoU of one prediction (any shape, integer labels) against its ground truth, from the confusion matrix:
    IoU_c = TP / (TP + FP + FN + 1e-10), averaged over classes with TP + FP + FN > 0; absent classes are NaN in the
    per-class vector. `ignore_index` pixels of `target` do not count."""
    return miou_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))
