"""The embedding stages in numpy: what runs ahead of each trunk, and where AdaLink adapters are applied.

An adapter is a residual low-rank map x + up(act(down(x))) applied to the token sequence the first block sees.
Requests name their adapter by an immutable id (`tenant/name/version/digest`); each stage keeps a bank of recently
used adapters (LRU, bounded) and loads a missing one from the adapter store on first use. An adapter id that the
store does not hold is an error for that request, never a silent fallback to the base model.

`read_adapter` (the store layout and the file's checks, both from the contracts) is shared with the torch bank in
`tipsv2_stages_torch.py`.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from safetensors.numpy import load_file

if __package__:  # imported as part of this project (tests); in Triton the contracts are copied beside this file
    from training.contracts import activations, adapter_file, adapter_store
else:
    from tipsv2_contracts import activations, adapter_file, adapter_store


class StageError(Exception):
    """A request this stage cannot serve; its message goes back to the client."""


@dataclass
class Adapter:
    down: np.ndarray  # (r, D) float32
    up: np.ndarray  # (D, r) float32
    activation: str
    nbytes: int

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    def apply(self, x: np.ndarray) -> np.ndarray:
        """x: (..., D) -> x + up(act(down(x)))."""
        hidden = activations.NUMPY[self.activation](x @ self.down.T)
        return x + hidden @ self.up.T


def read_adapter(store_dir: str, adapter_id: str, modality: str, dim: int, base_hash: str) -> Adapter:
    """Reads one adapter's `modality` part from the store and checks it as the gateway did on upload (the file on a
    shared volume is not trusted for that); StageError says what is wrong."""
    try:
        path = adapter_store.AdapterId.parse(adapter_id).path(store_dir)
    except ValueError as exc:
        raise StageError(str(exc)) from exc
    if not store_dir or not path.is_file():
        raise StageError(f"unknown adapter {adapter_id!r}: not in the adapter store")
    size = os.path.getsize(path)
    if size > adapter_file.MAX_FILE_BYTES:
        raise StageError(f"adapter {adapter_id!r} is {size} bytes, above {adapter_file.MAX_FILE_BYTES}")
    data = path.read_bytes()
    # The id names the file's content: a file changed after upload (or torn) is refused, not served.
    if adapter_store.file_digest(data) != adapter_id.rsplit("/", 1)[1]:
        raise StageError(f"adapter {adapter_id!r} does not match its digest: the file changed after upload")
    try:
        info, arrays = adapter_file.load_adapter(data, base_hash=base_hash or None, dim=dim)
    except adapter_file.AdapterValidationError as exc:
        raise StageError(f"adapter {adapter_id!r}: {exc}") from exc
    if modality not in info.modalities:
        raise StageError(f"adapter {adapter_id!r} has no {modality} part")
    down = np.ascontiguousarray(arrays[f"{modality}.down"])
    up = np.ascontiguousarray(arrays[f"{modality}.up"])
    return Adapter(down, up, info.activation, down.nbytes + up.nbytes)


class BankStats:
    """Counters every bank keeps for the stage metrics (read and drained by `tipsv2_metrics.StageMetrics`)."""

    def __init__(self) -> None:
        self.loads = 0
        self.evictions = 0
        self._load_times: list[float] = []

    def loaded(self, seconds: float) -> None:
        self.loads += 1
        self._load_times.append(seconds)

    def drain_load_times(self) -> list[float]:
        times, self._load_times = self._load_times, []
        return times


class AdapterBank:
    """LRU bank of adapters of one modality (numpy, host memory), loaded from the adapter store on first use."""

    def __init__(self, store_dir: str, modality: str, dim: int, base_hash: str, capacity: int) -> None:
        self.store_dir = store_dir
        self.modality = modality
        self.dim = dim
        self.base_hash = base_hash
        self.capacity = max(1, capacity)
        self.stats = BankStats()
        self._bank: collections.OrderedDict[str, Adapter] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._bank)

    def get(self, adapter_id: str) -> Adapter:
        with self._lock:
            adapter = self._bank.get(adapter_id)
            if adapter is not None:
                self._bank.move_to_end(adapter_id)
                return adapter
        started = time.perf_counter()
        adapter = read_adapter(self.store_dir, adapter_id, self.modality, self.dim, self.base_hash)
        with self._lock:
            self._bank[adapter_id] = adapter
            self._bank.move_to_end(adapter_id)
            self.stats.loaded(time.perf_counter() - started)
            while len(self._bank) > self.capacity:
                self._bank.popitem(last=False)
                self.stats.evictions += 1
        return adapter

    def apply(self, x: np.ndarray, adapter_ids: list[str]) -> np.ndarray:
        """x: (B, T, D); adapter_ids: one per row, "" for the base model. Rows are grouped by adapter."""
        if not any(adapter_ids):
            return x
        groups: dict[str, list[int]] = collections.defaultdict(list)
        for row, adapter_id in enumerate(adapter_ids):
            if adapter_id:
                groups[adapter_id].append(row)
        adapters = {adapter_id: self.get(adapter_id) for adapter_id in groups}  # all loaded before any row changes
        out = x.copy()
        for adapter_id, rows in groups.items():
            out[rows] = adapters[adapter_id].apply(x[rows])
        return out


class TextEmbedStage:
    """int32 ids (B, L) -> embeddings (B, L, D) = table[ids] * sqrt(D) + positions, and the float token mask."""

    def __init__(self, weights_path: str) -> None:
        arrays = load_file(weights_path)
        self.table = arrays["token_embedding"].astype(np.float32)
        self.positions = arrays["positions"].astype(np.float32)
        self.scale = np.float32(arrays["embedding_scale"][0])
        self.dim = self.table.shape[1]

    def __call__(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if ids.ndim != 2 or ids.shape[1] > self.positions.shape[0]:
            raise StageError(f"input_ids must be (batch, <= {self.positions.shape[0]}), got {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.table.shape[0]):
            raise StageError(f"token ids must lie in [0, {self.table.shape[0]})")
        embeddings = self.table[ids] * self.scale + self.positions[: ids.shape[1]]
        return embeddings.astype(np.float32), (ids != 0).astype(np.float32)

    def trunk_inputs(self, ids: np.ndarray, adapt: Callable[[np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
        """What the text trunk reads, the embeddings passed through `adapt` (the adapter bank)."""
        embeddings, mask = self(ids.astype(np.int64))
        return {"embeddings": adapt(embeddings), "token_mask": mask}


class ImageEmbedStage:
    """uint8 pixels (B, H, W, 3) -> tokens (B, 2 + N, D): [CLS1 + pos, CLS2, patches + pos]."""

    def __init__(self, weights_path: str) -> None:
        arrays = load_file(weights_path)
        self.weight_t = np.ascontiguousarray(arrays["patch_weight"].astype(np.float32).T)  # (3*p*p, D)
        self.bias = arrays["patch_bias"].astype(np.float32)
        self.cls1 = arrays["cls1"].astype(np.float32)
        self.cls2 = arrays["cls2"].astype(np.float32)
        self.patch = int(arrays["patch_size"][0])
        self.pos = {
            int(k.rsplit("_", 1)[1]): v.astype(np.float32) for k, v in arrays.items() if k.startswith("pos_grid_")
        }
        self.dim = self.bias.shape[0]

    @property
    def resolutions(self) -> list[int]:
        return sorted(g * self.patch for g in self.pos)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.ndim != 4 or pixels.shape[-1] != 3 or pixels.shape[1] != pixels.shape[2]:
            raise StageError(f"pixels must be (batch, S, S, 3) uint8, got {pixels.shape}")
        B, S = pixels.shape[0], pixels.shape[1]
        grid, p = S // self.patch, self.patch
        if S % p or grid not in self.pos:
            raise StageError(f"resolution {S} is not served; served resolutions: {self.resolutions}")
        # (B, S, S, 3) -> (B, g, p, g, p, 3) -> (B, g, g, 3, p, p): each patch flattened in the conv's (C, kh, kw) order
        x = pixels.reshape(B, grid, p, grid, p, 3).transpose(0, 1, 3, 5, 2, 4).reshape(B, grid * grid, 3 * p * p)
        x = x.astype(np.float32) / np.float32(255.0)
        patches = x @ self.weight_t + self.bias + self.pos[grid]
        tokens = np.empty((B, 2 + grid * grid, self.dim), dtype=np.float32)
        tokens[:, 0] = self.cls1
        tokens[:, 1] = self.cls2
        tokens[:, 2:] = patches
        return tokens

    def trunk_inputs(self, pixels: np.ndarray, adapt: Callable[[np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
        """What the image trunk reads, the tokens passed through `adapt` (the adapter bank)."""
        return {"tokens": adapt(self(pixels))}


STAGES: dict[str, type[TextEmbedStage] | type[ImageEmbedStage]] = {"text": TextEmbedStage, "image": ImageEmbedStage}
