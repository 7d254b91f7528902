"""`tipsv2 eval`: zero-shot segmentation mIoU, zero-shot classification and image<->text retrieval on shards.

Everything model-facing goes through the model library's own zero-shot functions (`training.tipsv2.zeroshot`:
`label_text_embeddings` with the 9 TCL templates, `segment`, `classify`, the confusion-matrix mIoU), so a trained
checkpoint is scored exactly as an official one would be.

- Segmentation: every class of the dataset's vocabulary (backgrounds and shapes) is a label; the label maps of all
  images are summed into one confusion matrix, and the dataset mIoU is computed from it (the official protocol).
  The mean IoU over the shape classes and over the background classes is reported too.
- Classification: the label of an image is its dominant shape (most pixels); the labels are the shape names.
- Retrieval: each image against the captions of the same split (default: the one-sentence caption); a hit is the
  image's own caption, or an identical string (identical captions cannot be told apart).
Classification and retrieval are reported for both image embeddings (CLS1 and CLS2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from training.data.dataset import ShardSamples
from training.data.synth import SynthSample
from training.tipsv2.model import TIPSv2
from training.tipsv2.tokenizer import Tokenizer
from training.tipsv2.zeroshot import classify, confusion_matrix, label_text_embeddings, miou_from_confusion, segment


@dataclass(frozen=True)
class EvalOptions:
    resolution: int | None = None  # model input side; None: the dataset's image size
    mode: str = "whole"  # segmentation: whole or slide (window = resolution, stride 3/4 of it)
    caption: str = "sentence"  # retrieval text source: alt, keywords, sentence or dense
    limit: int | None = None  # evaluate the first N samples only
    batch_size: int = 64


@dataclass
class EvalResult:
    metrics: dict[str, float]
    per_class_iou: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "per_class_iou": self.per_class_iou}


def image_tensor(sample: SynthSample, resolution: int | None = None) -> torch.Tensor:
    """(3, R, R) float in [0, 1]; resized (bilinear, antialiased) when `resolution` differs from the sample's."""
    pixels = torch.from_numpy(np.array(sample.image)).permute(2, 0, 1).float() / 255.0
    if resolution is not None and pixels.shape[-2:] != (resolution, resolution):
        pixels = F.interpolate(pixels[None], size=(resolution, resolution), mode="bilinear", antialias=True)[0]
    return pixels


@torch.no_grad()
def segmentation_miou(
    model: TIPSv2,
    tokenizer: Tokenizer,
    samples: Sequence[SynthSample],
    classes: list[str],
    ignore: int,
    opts: EvalOptions,
    resolution: int,
) -> tuple[float, dict[str, float]]:
    labels = label_text_embeddings(model, tokenizer, classes)
    confusion = torch.zeros(len(classes), len(classes), dtype=torch.long)
    for sample in samples:
        pred, _ = segment(
            model, image_tensor(sample), labels, opts.mode,  # type: ignore[arg-type]
            window=resolution, stride=max(resolution * 3 // 4, 1), short_side=resolution,
        )  # fmt: skip
        confusion += confusion_matrix(pred.cpu(), torch.from_numpy(np.array(sample.mask)), len(classes), ignore)
    mean, per_class = miou_from_confusion(confusion)
    return mean, {c: float(v) for c, v in zip(classes, per_class.tolist(), strict=True) if not np.isnan(v)}


@torch.no_grad()
def image_embeddings(
    model: TIPSv2, samples: Sequence[SynthSample], resolution: int, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    device = next(model.parameters()).device
    cls1, cls2 = [], []
    for start in range(0, len(samples), batch_size):
        pixels = torch.stack([image_tensor(s, resolution) for s in samples[start : start + batch_size]]).to(device)
        feats = model.encode_image(pixels)
        cls1.append(feats.cls1.float().cpu())
        cls2.append(feats.cls2.float().cpu())
    return torch.cat(cls1), torch.cat(cls2)


@torch.no_grad()
def text_embeddings(model: TIPSv2, tokenizer: Tokenizer, texts: Sequence[str], batch_size: int) -> torch.Tensor:
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        ids, _ = tokenizer(list(texts[start : start + batch_size]))
        out.append(model.encode_text(torch.from_numpy(ids.astype(np.int64)).to(device)).float().cpu())
    return torch.cat(out)


def recall_at_1(similarity: torch.Tensor, texts: Sequence[str]) -> tuple[float, float]:
    """(image->text, text->image) recall@1 for a square (images x texts) similarity; identical texts count as hits."""
    ids = {t: i for i, t in enumerate(dict.fromkeys(texts))}
    same = torch.tensor([ids[t] for t in texts])
    i2t = (same[similarity.argmax(dim=1)] == same).float().mean()
    t2i = (same[similarity.argmax(dim=0)] == same).float().mean()
    return float(i2t), float(t2i)


def evaluate(
    model: TIPSv2, tokenizer: Tokenizer, data: str | Path | Sequence[str | Path], opts: EvalOptions
) -> EvalResult:
    dataset = ShardSamples(data)
    count = len(dataset) if opts.limit is None else min(opts.limit, len(dataset))
    samples = [dataset[i] for i in range(count)]
    resolution = opts.resolution or int(dataset.manifest["image_size"])
    model = model.eval()
    metrics: dict[str, float] = {"num_images": float(len(samples)), "resolution": float(resolution)}
    seg_miou, per_class = segmentation_miou(
        model, tokenizer, samples, dataset.segmentation_classes, dataset.ignore_index, opts, resolution
    )
    metrics["segmentation_miou"] = seg_miou
    shape_names = dataset.classification_classes
    for group, names in (("shapes", shape_names), ("backgrounds", [c for c in per_class if c not in shape_names])):
        values = [per_class[c] for c in names if c in per_class]
        metrics[f"segmentation_miou_{group}"] = float(np.mean(values)) if values else float("nan")
    cls1, cls2 = image_embeddings(model, samples, resolution, opts.batch_size)
    shape_labels = label_text_embeddings(model, tokenizer, shape_names).float().cpu()
    labelled = [i for i, s in enumerate(samples) if s.meta.get("label") in shape_names]
    truth = torch.tensor([shape_names.index(samples[i].meta["label"]) for i in labelled])
    captions = [s.text(opts.caption) for s in samples]
    caption_emb = F.normalize(text_embeddings(model, tokenizer, captions, opts.batch_size), dim=-1)
    for name, emb in (("cls1", cls1), ("cls2", cls2)):
        probs = classify(emb[labelled], shape_labels, float(model.temperature))
        metrics[f"classification_top1_{name}"] = float((probs.argmax(dim=1) == truth).float().mean())
        i2t, t2i = recall_at_1(F.normalize(emb, dim=-1) @ caption_emb.T, captions)
        metrics[f"retrieval_i2t_r1_{name}"] = i2t
        metrics[f"retrieval_t2i_r1_{name}"] = t2i
    return EvalResult(metrics, per_class)
