"""The embedding stages and the AdaLink adapter bank in torch, with the bank resident on the model's device.

Same math as the numpy stages in `tipsv2_stages.py` (the reference the tests hold this module to), arranged for a
GPU: every adapter in the bank lives in two stacked, rank-padded tensors on the device,

    down (S, R, D)   up (S, D, R)     slot 0 = the base model (zeros), slots 1..capacity = adapters,

so a mixed-tenant batch is one gather of each row's slot plus two batched matmuls, whatever adapters it holds:

    hidden = act(bmm(x, down[slot]ᵀ))   (B, T, R)     x' = x + bmm(hidden, up[slot]ᵀ)   (B, T, D)

Ranks below R are zero-padded; every activation maps 0 to 0, so padding changes nothing. R grows (to the next power of
two) when a larger adapter arrives. A missing adapter is read from the adapter store on first use
(`tipsv2_stages.read_adapter`: same layout, same checks) into a free slot, or into the least recently used slot that the
batch being assembled does not need. Imports torch, numpy, safetensors and the contracts only (never this package).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

if __package__:  # imported as part of this project (tests); in Triton the model folder is on sys.path instead
    from training.contracts.activations import torch_activations

    from .tipsv2_stages import BankStats, StageError, read_adapter
else:
    from tipsv2_contracts.activations import torch_activations
    from tipsv2_stages import BankStats, StageError, read_adapter

TORCH_ACTIVATIONS = torch_activations()
MIN_RANK = 8


def device_index(
    values: Sequence[int] | Sequence[bool], device: torch.device, dtype: torch.dtype = torch.long
) -> torch.Tensor:
    """A small index tensor built on the host and copied to `device` without blocking: `torch.tensor(list,
    device="cuda")` copies from pageable memory, a host-device sync on every call (four per batch before)."""
    host = torch.tensor(values, dtype=dtype)
    if device.type != "cuda":
        return host
    return host.pin_memory().to(device, non_blocking=True)  # the caching host allocator keeps it until copied


class DeviceAdapterBank:
    """LRU bank of one modality's adapters, stacked on `device`; one instance serves one model instance."""

    def __init__(
        self, store_dir: str, modality: str, dim: int, base_hash: str, capacity: int, device: torch.device | str
    ) -> None:
        self.store_dir = store_dir
        self.modality = modality
        self.dim = dim
        self.base_hash = base_hash
        self.capacity = max(1, capacity)
        self.device = torch.device(device)
        self.stats = BankStats()
        slots = self.capacity + 1
        self.down = torch.zeros(slots, MIN_RANK, dim, device=self.device)
        self.up = torch.zeros(slots, dim, MIN_RANK, device=self.device)
        self.activation = ["identity"] * slots  # host-side, per slot: picks the activation kernels of a batch
        self._resident: collections.OrderedDict[str, int] = collections.OrderedDict()  # id -> slot, oldest first
        self._free = list(range(self.capacity, 0, -1))  # pop() hands out 1, 2, 3, ...
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._resident)

    @property
    def rank(self) -> int:
        return int(self.down.shape[1])

    def resident(self) -> list[str]:
        """Resident adapter ids, least recently used first."""
        return list(self._resident)

    # -- slots -------------------------------------------------------------------------------------------------

    def slots(self, adapter_ids: Sequence[str], pinned: frozenset[str] | set[str] = frozenset()) -> list[int]:
        """One slot per row (0 for ""), loading what is missing without evicting `pinned` ids."""
        wanted = list(dict.fromkeys(a for a in adapter_ids if a))
        if len(wanted) > self.capacity:
            raise StageError(
                f"a request names {len(wanted)} different adapters; the bank holds at most {self.capacity}"
            )
        keep = set(pinned) | set(wanted)
        with self._lock:
            for adapter_id in wanted:
                if adapter_id in self._resident:
                    self._resident.move_to_end(adapter_id)
                else:
                    self._load(adapter_id, keep)
            return [self._resident[a] if a else 0 for a in adapter_ids]

    def groups(
        self, adapter_lists: Sequence[Sequence[str]], errors: dict[int, str]
    ) -> Iterator[list[tuple[int, list[int]]]]:
        """Splits requests (each a list of per-row ids) into groups whose adapters fit the bank together.

        Yields [(request index, slots)]; apply each group before asking for the next (the next may evict). A
        request that cannot be served (unknown adapter, ...) goes to `errors` and never into a group.
        """
        current: list[tuple[int, list[int]]] = []
        pinned: set[str] = set()
        for index, ids in enumerate(adapter_lists):
            wanted = {a for a in ids if a}
            if current and len(pinned | wanted) > self.capacity:
                yield current
                current, pinned = [], set()
            try:
                slots = self.slots(ids, pinned)
            except StageError as exc:
                errors[index] = str(exc)
                continue
            pinned |= wanted
            current.append((index, slots))
        if current:
            yield current

    def _load(self, adapter_id: str, keep: set[str]) -> None:
        started = time.perf_counter()
        adapter = read_adapter(self.store_dir, adapter_id, self.modality, self.dim, self.base_hash)
        if adapter.rank > self.rank:
            self._grow(adapter.rank)
        slot = self._free.pop() if self._free else self._evict(keep)
        r = adapter.rank
        self.down[slot].zero_()
        self.up[slot].zero_()
        self.down[slot, :r] = torch.from_numpy(adapter.down).to(self.device)
        self.up[slot, :, :r] = torch.from_numpy(adapter.up).to(self.device)
        self.activation[slot] = adapter.activation
        self._resident[adapter_id] = slot
        self.stats.loaded(time.perf_counter() - started)

    def _evict(self, keep: set[str]) -> int:
        for adapter_id in self._resident:
            if adapter_id not in keep:
                self.stats.evictions += 1
                return self._resident.pop(adapter_id)
        raise StageError(f"every adapter in the bank (capacity {self.capacity}) is in use by this batch")

    def _grow(self, rank: int) -> None:
        new_rank = max(MIN_RANK, 1 << (rank - 1).bit_length())
        pad = new_rank - self.rank
        self.down = F.pad(self.down, (0, 0, 0, pad))  # (S, R, D) -> (S, R', D), zeros below
        self.up = F.pad(self.up, (0, pad))  # (S, D, R) -> (S, D, R'), zeros to the right

    # -- math --------------------------------------------------------------------------------------------------

    def apply(self, x: torch.Tensor, slots: Sequence[int]) -> torch.Tensor:
        """x: (B, T, D) on the bank's device, slots from `slots()` -> x + up(act(down x)) per row."""
        rows = [i for i, s in enumerate(slots) if s]
        if not rows:
            return x
        full = len(rows) == len(slots)
        row_index = None if full else device_index(rows, x.device)
        sub = x if row_index is None else x.index_select(0, row_index)
        slot_index = device_index([slots[i] for i in rows], self.device)
        down, up = self.down.index_select(0, slot_index), self.up.index_select(0, slot_index)
        hidden = torch.bmm(sub, down.transpose(1, 2).to(sub.dtype))  # (b, T, R)
        hidden = self._activate(hidden, [self.activation[slots[i]] for i in rows])
        adapted = sub + torch.bmm(hidden, up.transpose(1, 2).to(sub.dtype))  # (b, T, D)
        if row_index is None:
            return adapted
        return x.index_copy(0, row_index, adapted)

    @staticmethod
    def _activate(hidden: torch.Tensor, names: list[str]) -> torch.Tensor:
        kinds = set(names) - {"identity"}
        if not kinds:
            return hidden
        if len(kinds) == 1 and len(set(names)) == 1:
            return TORCH_ACTIVATIONS[names[0]](hidden)
        out = hidden
        for kind in kinds:
            mask = device_index([n == kind for n in names], hidden.device, torch.bool).view(-1, 1, 1)
            out = torch.where(mask, TORCH_ACTIVATIONS[kind](hidden), out)
        return out


class TorchTextEmbedStage:
    """int ids (B, L) on the host -> embeddings (B, L, D) = table[ids] * sqrt(D) + positions, and the token mask.

    Computes in `dtype` (bfloat16 halves what the trunk reads; the trunk computes in it anyway)."""

    def __init__(self, weights_path: str, device: torch.device | str, dtype: torch.dtype = torch.float32) -> None:
        self.device = torch.device(device)
        arrays = load_file(weights_path, device=str(self.device))
        self.table = arrays["token_embedding"].to(dtype)
        self.positions = arrays["positions"].to(dtype)
        self.scale = float(arrays["embedding_scale"][0])  # the float32 value, exactly
        self.dim = int(self.table.shape[1])

    def check(self, ids: torch.Tensor) -> None:
        """Host-side checks (no device sync); StageError for what this stage cannot embed."""
        if ids.ndim != 2 or ids.shape[1] > self.positions.shape[0]:
            raise StageError(f"input_ids must be (batch, <= {self.positions.shape[0]}), got {tuple(ids.shape)}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.table.shape[0]):
            raise StageError(f"token ids must lie in [0, {self.table.shape[0]})")

    def __call__(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # int32 over the bus, widened on the device: `.to(device, long)` would widen on the host, into pageable memory
        ids = ids.to(self.device, non_blocking=True).long()
        embeddings = F.embedding(ids, self.table) * self.scale + self.positions[: ids.shape[1]]
        return embeddings, (ids != 0).float()

    def trunk_inputs(self, ids: torch.Tensor, adapt: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the text trunk reads, the embeddings passed through `adapt` (the adapter bank)."""
        embeddings, mask = self(ids)
        return {"embeddings": adapt(embeddings), "token_mask": mask}


class TorchImageEmbedStage:
    """uint8 pixels (B, S, S, 3) on the host -> tokens (B, 2 + N, D) = [CLS1 + pos, CLS2, patches + pos], in `dtype`."""

    def __init__(self, weights_path: str, device: torch.device | str, dtype: torch.dtype = torch.float32) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        arrays = load_file(weights_path, device=str(self.device))
        self.weight_t = arrays["patch_weight"].to(dtype).t().contiguous()  # (3*p*p, D)
        self.bias = arrays["patch_bias"].to(dtype)
        self.cls1 = arrays["cls1"].to(dtype)
        self.cls2 = arrays["cls2"].to(dtype)
        self.patch = int(arrays["patch_size"][0])
        self.pos = {int(k.rsplit("_", 1)[1]): v.to(dtype) for k, v in arrays.items() if k.startswith("pos_grid_")}
        self.dim = int(self.bias.shape[0])

    @property
    def resolutions(self) -> list[int]:
        return sorted(g * self.patch for g in self.pos)

    def check(self, pixels: torch.Tensor | np.ndarray) -> None:
        shape = tuple(pixels.shape)
        if len(shape) != 4 or shape[-1] != 3 or shape[1] != shape[2]:
            raise StageError(f"pixels must be (batch, S, S, 3) uint8, got {shape}")
        if shape[1] % self.patch or shape[1] // self.patch not in self.pos:
            raise StageError(f"resolution {shape[1]} is not served; served resolutions: {self.resolutions}")

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        B, S = pixels.shape[0], pixels.shape[1]
        grid, p = S // self.patch, self.patch
        x = pixels.to(self.device, non_blocking=True)  # uint8 over the bus: a quarter of float32
        # (B, S, S, 3) -> (B, g, p, g, p, 3) -> (B, g, g, 3, p, p): each patch flattened in the conv's (C, kh, kw) order
        x = x.reshape(B, grid, p, grid, p, 3).permute(0, 1, 3, 5, 2, 4).reshape(B, grid * grid, 3 * p * p)
        patches = (x.to(self.dtype) / 255.0) @ self.weight_t + self.bias + self.pos[grid]
        cls1 = self.cls1.expand(B, 1, self.dim)
        cls2 = self.cls2.reshape(1, 1, self.dim).expand(B, 1, self.dim)
        return torch.cat((cls1, cls2, patches), dim=1)

    def trunk_inputs(
        self, pixels: torch.Tensor, adapt: Callable[[torch.Tensor], torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """What the image trunk reads, the tokens passed through `adapt` (the adapter bank)."""
        return {"tokens": adapt(self(pixels))}


TORCH_STAGES: dict[str, type[TorchTextEmbedStage] | type[TorchImageEmbedStage]] = {
    "text": TorchTextEmbedStage,
    "image": TorchImageEmbedStage,
}
