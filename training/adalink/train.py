"""Training on a task: one loop for every method (AdaLink, LoRA, full fine-tuning), so they differ only in what
they train.

A step draws a batch (a fresh permutation each epoch, from the task's seed), embeds the images (CLS1 or CLS2) and
- classification: embeds every label's prompts (through the text adapter, when there is one; once, when the text
  side is frozen) and takes the zero-shot head's cross-entropy (`classification_loss`);
- retrieval: embeds the batch's captions and takes the recipe's symmetric contrastive loss
  (`training.losses.contrastive.ContrastiveLoss`) at the base model's temperature;
then AdamW with the recipe's warm-up + cosine learning rate (`training.train.schedules.warmup_cosine`) and
gradient clipping. CPU runs are float32 and deterministic for a seed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from training.adalink.classification_loss import zero_shot_classification_loss
from training.adalink.prompts import PromptBank
from training.adalink.task_data import TaskData
from training.adalink.tasks import Task
from training.adalink.tuners import Tuned
from training.losses.contrastive import ContrastiveLoss
from training.tipsv2.model import ZeroShotModel
from training.tipsv2.tokenizer import Tokenizer
from training.train.schedules import warmup_cosine

log = logging.getLogger(__name__)


@dataclass
class FitReport:
    steps: int
    seconds: float  # wall time of the training steps (data is in memory)
    losses: list[float] = field(default_factory=list)  # one per step

    @property
    def final_loss(self) -> float:
        tail = self.losses[-10:]
        return float(np.mean(tail)) if tail else float("nan")


def batch_indices(num_examples: int, batch_size: int, steps: int, seed: int) -> Iterator[torch.Tensor]:
    """`steps` batches of `batch_size` indices: consecutive slices of per-epoch permutations (the epoch's tail that
    does not fill a batch is dropped)."""
    if batch_size > num_examples:
        raise ValueError(f"batch size {batch_size} is larger than the {num_examples} training examples")
    generator = torch.Generator().manual_seed(seed)
    per_epoch = num_examples // batch_size
    order = torch.randperm(num_examples, generator=generator)
    for step in range(steps):
        slot = step % per_epoch
        if step and slot == 0:
            order = torch.randperm(num_examples, generator=generator)
        yield order[slot * batch_size : (slot + 1) * batch_size]


class TaskObjective:
    """The loss of a task for a model, computed on one batch."""

    def __init__(self, task: Task, data: TaskData, tokenizer: Tokenizer, text_trainable: bool) -> None:
        self.task, self.data, self.tokenizer = task, data, tokenizer
        self.text_trainable = text_trainable
        self.contrastive = ContrastiveLoss("retrieval")
        self.prompts = (
            PromptBank(tokenizer, data.label_names, task.templates) if task.kind == "classification" else None
        )
        self._frozen_labels: torch.Tensor | None = None

    def label_embeddings(self, model: ZeroShotModel) -> torch.Tensor:
        assert self.prompts is not None
        if self.text_trainable:
            return self.prompts.embeddings(model)
        if self._frozen_labels is None:  # the text side does not change: embed the prompts once
            with torch.no_grad():
                self._frozen_labels = self.prompts.embeddings(model)
        return self._frozen_labels

    def __call__(self, model: ZeroShotModel, index: torch.Tensor) -> torch.Tensor:
        device = next(model.parameters()).device
        features = model.encode_image(self.data.pixels(index).to(device))
        image = getattr(features, self.task.image_embedding)
        temperature = model.temperature.detach()
        if self.task.kind == "classification":
            targets = self.data.labels[index].to(device)
            return zero_shot_classification_loss(image, self.label_embeddings(model), temperature, targets)
        ids, _ = self.tokenizer([self.data.captions[i] for i in index.tolist()])
        text = model.encode_text(torch.from_numpy(ids.astype(np.int64)).to(device))
        loss: torch.Tensor = self.contrastive(image, text, temperature)["retrieval_loss"]
        return loss


def train_step(
    tuned: Tuned, objective: TaskObjective, optimizer: torch.optim.Optimizer, index: torch.Tensor, clip_grad: float
) -> float:
    """One optimisation step on the examples at `index`; returns the loss."""
    loss = objective(tuned.model, index)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    torch.autograd.backward(loss)
    if clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(tuned.trainable, clip_grad)
    optimizer.step()
    return float(loss.detach())


def fit(tuned: Tuned, task: Task, data: TaskData, tokenizer: Tokenizer, log_every: int = 50) -> FitReport:
    """Trains `tuned.trainable` on `task` for `task.optim.steps` steps."""
    optim = task.optim
    torch.manual_seed(optim.seed)
    objective = TaskObjective(task, data, tokenizer, text_trainable="text" in tuned.modalities)
    optimizer = torch.optim.AdamW(tuned.trainable, lr=optim.lr, weight_decay=optim.weight_decay)
    tuned.model.train()
    report = FitReport(optim.steps, 0.0)
    started = time.perf_counter()
    for step, index in enumerate(batch_indices(len(data), optim.batch_size, optim.steps, optim.seed)):
        lr = warmup_cosine(step, optim.steps, optim.warmup_steps, optim.lr, optim.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        report.losses.append(train_step(tuned, objective, optimizer, index, optim.clip_grad))
        if (step + 1) % log_every == 0 or step + 1 == optim.steps:
            log.info("%s step %d/%d loss %.4f lr %.2e", tuned.method, step + 1, optim.steps, report.final_loss, lr)
    report.seconds = time.perf_counter() - started
    tuned.model.eval()
    return report
