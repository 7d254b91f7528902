"""The task metric of a (base, adapted, LoRA or fine-tuned) model on a task's examples.

- classification: top-1 accuracy of zero-shot classification, scored exactly as the model library scores it
  (`zeroshot.label_text_embeddings` with the task's templates, then `zeroshot.classify` at the model's temperature);
- retrieval: recall@1 in both directions over the split (`training.eval.zeroshot_eval.recall_at_1`: identical
  captions count as hits), reported with their mean, the task metric.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from training.adalink.task_data import TaskData
from training.adalink.tasks import Task
from training.eval.zeroshot_eval import recall_at_1
from training.tipsv2.model import ZeroShotModel
from training.tipsv2.tokenizer import Tokenizer
from training.tipsv2.zeroshot import classify, label_text_embeddings


@torch.no_grad()
def image_embeddings(model: ZeroShotModel, data: TaskData, which: str, batch_size: int = 128) -> torch.Tensor:
    """(N, D) float32: CLS1 or CLS2 of every example."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(data), batch_size):
        index = torch.arange(start, min(start + batch_size, len(data)))
        features = model.encode_image(data.pixels(index).to(device))
        out.append(getattr(features, which).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def text_embeddings(
    model: ZeroShotModel, tokenizer: Tokenizer, texts: tuple[str, ...], batch_size: int = 256
) -> torch.Tensor:
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        ids, _ = tokenizer(list(texts[start : start + batch_size]))
        out.append(model.encode_text(torch.from_numpy(ids.astype(np.int64)).to(device)).float().cpu())
    return torch.cat(out)


def classification_accuracy(model: ZeroShotModel, tokenizer: Tokenizer, task: Task, data: TaskData) -> float:
    labels = label_text_embeddings(model, tokenizer, data.label_names, task.templates).float().cpu()
    probs = classify(image_embeddings(model, data, task.image_embedding), labels, float(model.temperature))
    return float((probs.argmax(dim=1) == data.labels).float().mean())


def retrieval_recall(model: ZeroShotModel, tokenizer: Tokenizer, task: Task, data: TaskData) -> dict[str, float]:
    images = F.normalize(image_embeddings(model, data, task.image_embedding), dim=-1)
    texts = F.normalize(text_embeddings(model, tokenizer, data.captions), dim=-1)
    i2t, t2i = recall_at_1(images @ texts.T, data.captions)
    return {"i2t_r1": i2t, "t2i_r1": t2i, "mean_r1": (i2t + t2i) / 2}


def evaluate(model: ZeroShotModel, tokenizer: Tokenizer, task: Task, data: TaskData) -> dict[str, float]:
    """{"metric": the task metric, ...its parts}; the model is put in eval mode."""
    model.eval()
    if task.kind == "classification":
        accuracy = classification_accuracy(model, tokenizer, task, data)
        return {"metric": accuracy, "top1": accuracy}
    recall = retrieval_recall(model, tokenizer, task, data)
    return {"metric": recall["mean_r1"], **recall}
