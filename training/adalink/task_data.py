"""A task's examples in memory: images as uint8 tensors plus label ids (classification) or captions (retrieval).

Adapter datasets are small (a tenant's few thousand examples), so they are decoded once from the training
package's shards (`training.data.dataset.ShardSamples`) and batches are plain tensor indexing: no loader workers,
and a step costs only the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training.adalink.tasks import Task
from training.data.dataset import ShardSamples


@dataclass
class TaskData:
    images: torch.Tensor  # (N, 3, S, S) uint8, the dataset's pixels
    resolution: int  # the model input side: images are resized to it per batch when S differs
    label_names: tuple[str, ...]  # classification: the labels, in id order (empty for retrieval)
    labels: torch.Tensor  # (N,) int64 label ids (classification) or empty
    captions: tuple[str, ...]  # retrieval: one caption per image (empty for classification)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def pixels(self, index: torch.Tensor) -> torch.Tensor:
        """(b, 3, R, R) float in [0, 1] for the examples at `index` (bilinear, antialiased resize if needed)."""
        pixels = self.images[index].float() / 255.0
        if pixels.shape[-1] != self.resolution:
            size = (self.resolution, self.resolution)
            pixels = F.interpolate(pixels, size=size, mode="bilinear", antialias=True, align_corners=False)
        return pixels


def task_labels(task: Task, samples: ShardSamples) -> tuple[str, ...]:
    return task.labels if task.labels is not None else tuple(samples.classification_classes)


def load_task_data(task: Task, dirs: Sequence[Path], labels: tuple[str, ...] | None = None) -> TaskData:
    """The examples of `dirs` for `task`. Classification keeps the images that have a label (a scene with no
    visible object has none) and fails on a label outside the task's; `labels` fixes the label order (the train
    split's, when loading the eval split)."""
    samples = ShardSamples(list(dirs))
    resolution = task.resolution or int(samples.manifest["image_size"])
    images, ids, captions = [], [], []
    names = labels if labels is not None else task_labels(task, samples) if task.kind == "classification" else ()
    for index in range(len(samples)):
        sample = samples[index]
        if task.kind == "classification":
            label = sample.meta.get(task.label_field)
            if label is None:
                continue
            if label not in names:
                raise ValueError(f"sample {sample.key} is labelled {label!r}, which is not among the task's labels")
            ids.append(names.index(label))
        else:
            captions.append(sample.text(task.caption))
        images.append(sample.image)
    if not images:
        raise ValueError(f"no usable examples in {', '.join(map(str, dirs))}")
    pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return TaskData(pixels, resolution, tuple(names), torch.tensor(ids, dtype=torch.long), tuple(captions))
