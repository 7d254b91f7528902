"""The recipe's input pipeline: views, iBOT masks and the sampled caption of each example, batched per step.

Exactness is built in rather than bolted on:
- Example `i` in epoch `e` draws everything random (crops, flips, masks, the caption granularity) from its own
  generator seeded by (seed, e, i). A sample is therefore the same whichever process, worker or batch slot loads it.
- `StepBatchSampler` derives the global batch of step `s` from (seed, s) alone and gives rank `r` its slice. The data
  position of a run is just its step count: resuming at step `s` replays exactly what an uninterrupted run would
  have seen, and N processes see together exactly the global batch one process would see.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from training.data.dataset import ShardSamples
from training.data.masking import sample_mask
from training.data.views import random_crop_view, resized_view
from training.data.vocabulary import CAPTION_SOURCES
from training.tipsv2.tokenizer import Tokenizer


@dataclass(frozen=True)
class ViewSpec:
    """Views of each example. Global view 0 is the whole image (the image-text view); the others are crops."""

    global_size: int = 112
    num_global: int = 2
    global_scale: tuple[float, float] = (0.35, 1.0)
    num_local: int = 2
    local_size: int = 56
    local_scale: tuple[float, float] = (0.1, 0.35)
    patch_size: int = 14
    # iBOT masks go on the cropped global views only: view 0 stays intact for the contrastive loss.
    mask_probability: float = 0.5
    mask_ratio: tuple[float, float] = (0.1, 0.5)
    mask_min_block: int = 4

    def __post_init__(self) -> None:
        for size in (self.global_size, self.local_size):
            if size % self.patch_size:
                raise ValueError(f"view size {size} is not a multiple of the patch size {self.patch_size}")
        if self.num_global < 1:
            raise ValueError("at least one global view (the image-text view) is needed")

    @property
    def grid(self) -> tuple[int, int]:
        g = self.global_size // self.patch_size
        return g, g


@dataclass(frozen=True)
class TextSpec:
    """Which texts pair with CLS1 and CLS2. CLS2's caption source is drawn uniformly per example."""

    cls1_source: str = "alt"
    cls2_sources: tuple[str, ...] = ("keywords", "sentence", "dense")

    def __post_init__(self) -> None:
        for source in (self.cls1_source, *self.cls2_sources):
            if source not in CAPTION_SOURCES:
                raise ValueError(f"unknown caption source {source!r}; known: {', '.join(CAPTION_SOURCES)}")
        if not self.cls2_sources:
            raise ValueError("cls2_sources is empty")


def spec_from_dict(cls: type[Any], raw: dict[str, Any]) -> Any:
    """Builds a spec dataclass from a config section; lists become tuples, unknown keys fail."""
    known = {f.name for f in fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def example_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index, 0x7195])


class PretrainDataset(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Map-style dataset indexed by (epoch, sample index), returning one example's views, masks and token ids."""

    def __init__(
        self,
        data: str | Path | Sequence[str | Path],
        tokenizer_path: str | Path,
        views: ViewSpec,
        texts: TextSpec,
        seed: int,
        text_max_len: int = 64,
    ) -> None:
        self.samples = ShardSamples(data)
        self.tokenizer_path = Path(tokenizer_path)
        self.views, self.texts, self.seed, self.text_max_len = views, texts, seed, text_max_len
        self._tokenizer: Tokenizer | None = None

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:  # loaded lazily: each DataLoader worker builds its own
            self._tokenizer = Tokenizer(self.tokenizer_path, self.text_max_len)
        return self._tokenizer

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tokenizer": None}

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Any]:
        epoch, index = item
        rng = example_rng(self.seed, epoch, index)
        sample = self.samples[index]
        image = Image.fromarray(sample.image)
        v = self.views
        global_views = [resized_view(image, v.global_size)]
        global_views += [random_crop_view(rng, image, v.global_size, v.global_scale) for _ in range(v.num_global - 1)]
        local_views = [random_crop_view(rng, image, v.local_size, v.local_scale) for _ in range(v.num_local)]
        n = v.grid[0] * v.grid[1]
        masks = [np.zeros(n, dtype=bool)]
        masks += [
            sample_mask(rng, v.grid, v.mask_probability, v.mask_ratio, v.mask_min_block)
            for _ in range(v.num_global - 1)
        ]
        source = str(rng.choice(self.texts.cls2_sources))
        ids, _ = self.tokenizer([sample.text(self.texts.cls1_source), sample.text(source)])
        return {
            "index": index,
            "global_views": np.stack(global_views),
            "local_views": np.stack(local_views) if local_views else None,
            "masks": np.stack(masks),
            "cls1_ids": ids[0],
            "cls2_ids": ids[1],
            "cls2_source": CAPTION_SOURCES.index(source),
        }


@dataclass
class Batch:
    """One process's share of a step. Views are view-major: (V, B, ...), masks (V, B, N)."""

    index: torch.Tensor  # (B,) dataset indices
    global_views: torch.Tensor  # (G, B, 3, S, S)
    local_views: torch.Tensor | None  # (L, B, 3, s, s)
    masks: torch.Tensor  # (G, B, N) bool
    cls1_ids: torch.Tensor  # (B, T) token ids paired with CLS1
    cls2_ids: torch.Tensor  # (B, T) token ids paired with CLS2
    cls2_source: torch.Tensor  # (B,) index into vocabulary.CAPTION_SOURCES
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.index.shape[0])

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.index.to(device, non_blocking=True),
            self.global_views.to(device, non_blocking=True),
            None if self.local_views is None else self.local_views.to(device, non_blocking=True),
            self.masks.to(device, non_blocking=True),
            self.cls1_ids.to(device, non_blocking=True),
            self.cls2_ids.to(device, non_blocking=True),
            self.cls2_source.to(device, non_blocking=True),
            self.extra,
        )


def trim_padding(ids: np.ndarray) -> np.ndarray:
    """Drops the all-padding columns at the end: the text tower's output does not depend on trailing padding."""
    used = int((ids != 0).any(axis=0).nonzero()[0].max(initial=0)) + 1
    return ids[:, :used]


def collate(examples: list[dict[str, Any]]) -> Batch:
    local = [e["local_views"] for e in examples]
    return Batch(
        index=torch.tensor([e["index"] for e in examples], dtype=torch.long),
        global_views=torch.from_numpy(np.stack([e["global_views"] for e in examples], axis=1)),
        local_views=None if local[0] is None else torch.from_numpy(np.stack(local, axis=1)),
        masks=torch.from_numpy(np.stack([e["masks"] for e in examples], axis=1)),
        cls1_ids=torch.from_numpy(trim_padding(np.stack([e["cls1_ids"] for e in examples]))).long(),
        cls2_ids=torch.from_numpy(trim_padding(np.stack([e["cls2_ids"] for e in examples]))).long(),
        cls2_source=torch.tensor([e["cls2_source"] for e in examples], dtype=torch.long),
    )


class StepBatchSampler(torch.utils.data.Sampler):  # type: ignore[type-arg]
    """Yields, for steps [start_step, num_steps), this rank's slice of each step's global batch of (epoch, index).

    Epoch `e` visits the dataset in the permutation drawn from (seed, e); an epoch has len // global_batch steps
    (the remainder is dropped so every step has a full batch).
    """

    def __init__(
        self, num_samples: int, global_batch: int, num_steps: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        if global_batch % world_size:
            raise ValueError(f"global batch {global_batch} is not divisible by {world_size} processes")
        if global_batch > num_samples:
            raise ValueError(f"global batch {global_batch} is larger than the dataset ({num_samples} samples)")
        self.num_samples, self.global_batch, self.num_steps = num_samples, global_batch, num_steps
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.steps_per_epoch = num_samples // global_batch
        self.start_step = 0

    def global_indices(self, step: int) -> list[tuple[int, int]]:
        epoch, within = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        chosen = order[within * self.global_batch : (within + 1) * self.global_batch]
        return [(epoch, int(i)) for i in chosen]

    def rank_indices(self, step: int) -> list[tuple[int, int]]:
        local = self.global_batch // self.world_size
        return self.global_indices(step)[self.rank * local : (self.rank + 1) * local]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.num_steps):
            yield self.rank_indices(step)

    def __len__(self) -> int:
        return max(self.num_steps - self.start_step, 0)


def make_loader(
    dataset: PretrainDataset, sampler: StepBatchSampler, start_step: int, num_workers: int = 0
) -> torch.utils.data.DataLoader:  # type: ignore[type-arg]
    """A loader yielding `Batch`es for steps [start_step, sampler.num_steps)."""
    sampler.start_step = start_step
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=False,
        prefetch_factor=2 if num_workers else None,
    )
