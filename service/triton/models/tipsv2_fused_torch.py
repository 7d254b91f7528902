"""One TIPSv2 modality's whole forward in one call: what the fused Triton model of the torch runtime runs.

    request rows ──one host copy──▶ staging (pinned) ──async──▶ device: embedding layer ─▶ AdaLink bank ─▶ trunk
    only the outputs asked for ──async──▶ pinned host memory ──one sync per execute──▶ CPU tensors out (DLPack)

Requests of one `execute` (Triton's dynamic batch) become one pass per group of requests whose adapters fit the
bank together and whose inputs have one shape (a resolution); a request that cannot be served gets its own error.
Outputs are computed for the union of what the group asked for and copied back for the requests that asked: a
batch where nobody asked for `dense_tokens` never runs the dense (MaskCLIP value path) pass, and when some did, it
runs for their rows only; patch tokens are never copied for a CLS-only request. `Counters` record both, for the
model's metrics and the tests that hold it to this.

Triton-agnostic (torch only): the model file (`fused.py`) turns requests into `Item`s, and the GPU benchmark calls
`FusedForward` in-process as its direct path, so "direct" and "served" run the same code.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

if __package__:  # imported as part of this project (tests, the benchmark); in Triton the model folder is on sys.path
    from training.contracts.served import INPUTS, OUTPUTS

    from .tipsv2_batch import by_shape, spans
    from .tipsv2_stages import StageError
    from .tipsv2_stages_torch import TORCH_STAGES, DeviceAdapterBank, device_index
else:
    from tipsv2_batch import by_shape, spans
    from tipsv2_contracts.served import INPUTS, OUTPUTS
    from tipsv2_stages import StageError
    from tipsv2_stages_torch import TORCH_STAGES, DeviceAdapterBank, device_index

log = logging.getLogger("tipsv2.fused")
ALIGN = 64  # bytes: every tensor carved from the host arena starts on a cache line


@dataclass(frozen=True)
class Modality:
    name: str
    input_name: str
    outputs: tuple[str, ...]


MODALITIES = {name: Modality(name, INPUTS[name], OUTPUTS[name]) for name in ("text", "image")}


@dataclass
class Item:
    """One request's share of an execute: its rows (a host tensor), one adapter id per row, the outputs it wants."""

    x: torch.Tensor
    adapters: list[str]
    wanted: tuple[str, ...]

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])


@dataclass
class Counters:
    """What the forward did since the model started (read by the model's metrics)."""

    dense_passes: int = 0
    dense_rows: int = 0
    adapted_rows: int = 0
    output_rows: collections.Counter[str] = field(default_factory=collections.Counter)


class HostArena:
    """Host memory carved into tensors, reused from one call to the next; pinned for a GPU, so that copies to and from
    it run asynchronously. A call may outgrow it: a bigger chunk is allocated on the spot (views into the old one
    keep it alive until dropped, and the caching host allocator holds it until its pending copies are done), and the
    next call starts with one chunk big enough for everything the last one took."""

    def __init__(self, pinned: bool) -> None:
        self.pinned = pinned
        self.buffer = torch.empty(0, dtype=torch.uint8)
        self.used = 0
        self.needed = 0

    def reset(self) -> None:
        if self.needed > self.buffer.numel():
            self._allocate(self.needed)
        self.used = self.needed = 0

    def take(self, shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
        nbytes = _numel(shape) * dtype.itemsize
        self.needed += nbytes + ALIGN
        start = -(-self.used // ALIGN) * ALIGN
        if start + nbytes > self.buffer.numel():
            self._allocate(max(nbytes, 2 * self.buffer.numel()))
            start = 0
        self.used = start + nbytes
        return self.buffer[start : start + nbytes].view(dtype).view(tuple(shape))

    def _allocate(self, nbytes: int) -> None:
        self.buffer = torch.empty(nbytes, dtype=torch.uint8, pin_memory=self.pinned)


class FusedForward:
    """stage + bank + trunk of one modality on one device; `run(items)` returns host tensors per item."""

    def __init__(self, modality: str, stage: Any, bank: DeviceAdapterBank, trunk: Any) -> None:
        self.modality = MODALITIES[modality]
        self.stage, self.bank, self.trunk = stage, bank, trunk
        self.device = bank.device
        self.arena = HostArena(pinned=self.device.type == "cuda")
        self.counters = Counters()

    @classmethod
    def load(
        cls,
        modality: str,
        folder: str,
        device: torch.device | str,
        dtype: str = "float32",
        adapter_store: str = "",
        base_hash: str = "",
        adapter_capacity: int = 256,
        compile_mode: str = "",
        compile_backend: str = "inductor",
        buckets: tuple[int, ...] = (),
    ) -> FusedForward:
        """From a fused model's version folder: `embed.safetensors` and the tower written by `save_torch_trunk`."""
        from training.export.torch_trunk import DTYPES, load_torch_trunk

        device = torch.device(device)
        trunk = load_torch_trunk(folder, device, dtype, compile_mode, compile_backend, buckets)
        stage = TORCH_STAGES[modality](f"{folder}/embed.safetensors", device, DTYPES[dtype])
        bank = DeviceAdapterBank(adapter_store, modality, stage.dim, base_hash, adapter_capacity, device)
        return cls(modality, stage, bank, trunk)

    # -- warm-up -----------------------------------------------------------------------------------------------

    def warm(self, batch_sizes: Iterable[int], text_len: int) -> None:
        """Compiles the trunk for every batch size (and resolution) now; a no-op for an eager trunk."""
        if not self.trunk.compiled:
            return
        dim, dtype = self.stage.dim, self.trunk.dtype
        samples = []
        for rows in batch_sizes:
            if self.modality.name == "text":
                embeddings = torch.zeros(rows, text_len, dim, dtype=dtype, device=self.device)
                samples.append({"embeddings": embeddings, "token_mask": torch.ones(rows, text_len, device=self.device)})
            else:
                for size in self.stage.resolutions:
                    tokens = 2 + (size // self.stage.patch) ** 2
                    samples.append({"tokens": torch.zeros(rows, tokens, dim, dtype=dtype, device=self.device)})
        self.trunk.warm(samples)
        if self.trunk.compile_error:
            log.warning("%s trunk: compile failed, serving eager: %s", self.modality.name, self.trunk.compile_error)

    # -- the forward -------------------------------------------------------------------------------------------

    def run(self, items: Sequence[Item]) -> tuple[list[dict[str, torch.Tensor]], dict[int, str]]:
        """Outputs per item ({} for one that failed: its message is in the errors, keyed by item index). The output
        tensors are views of host memory this object reuses on its next call: consume them before calling again."""
        results: list[dict[str, torch.Tensor]] = [{} for _ in items]
        errors: dict[int, str] = {}
        valid = []
        for index, item in enumerate(items):
            try:
                self._check(item)
                valid.append(index)
            except StageError as exc:
                errors[index] = str(exc)
        self.arena.reset()
        group_errors: dict[int, str] = {}
        with torch.inference_mode():
            for group in self.bank.groups([items[i].adapters for i in valid], group_errors):
                members = [(valid[j], slots) for j, slots in group]
                for same_shape in by_shape(members, lambda member: tuple(items[member[0]].x.shape[1:])):
                    self._forward(same_shape, items, results)
        errors.update({valid[j]: message for j, message in group_errors.items()})
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()  # the one sync: every output is on the host now
        return results, errors

    def _check(self, item: Item) -> None:
        self.stage.check(item.x)
        if len(item.adapters) != item.rows:
            raise StageError(f"adapter must hold one id per row: {len(item.adapters)} ids for {item.rows} rows")
        unknown = set(item.wanted) - set(self.modality.outputs)
        if unknown:
            raise StageError(f"unknown outputs {sorted(unknown)}; this model has {list(self.modality.outputs)}")

    def _forward(
        self, members: list[tuple[int, list[int]]], items: Sequence[Item], results: list[dict[str, torch.Tensor]]
    ) -> None:
        parts = [(index, items[index]) for index, _ in members]
        first = parts[0][1].x
        host = self.arena.take((sum(item.rows for _, item in parts), *first.shape[1:]), first.dtype)
        start = 0
        for _, item in parts:  # the one host copy: shared memory -> staging
            host[start : start + item.rows].copy_(item.x)
            start += item.rows
        x = host.to(self.device, non_blocking=True)
        slots = [slot for _, member_slots in members for slot in member_slots]
        wanted = [name for name in self.modality.outputs if any(name in item.wanted for _, item in parts)]
        dense = [(index, item) for index, item in parts if "dense_tokens" in item.wanted]
        dense_rows = None
        if dense and len(dense) < len(parts):  # some rows only: the dense pass runs for those, in this order
            dense_rows = device_index(_rows_of(parts, {index for index, _ in dense}), x.device)
        outputs = self.trunk(self.stage.trunk_inputs(x, lambda h: self.bank.apply(h, slots)), wanted, dense_rows)
        for name in wanted:
            asked = {index for index, item in parts if name in item.wanted}
            placed = dense if name == "dense_tokens" and dense_rows is not None else parts
            self._copy_out(name, outputs[name], placed, asked, results)
        self.counters.adapted_rows += sum(1 for slot in slots if slot)
        if dense:
            self.counters.dense_passes += 1
            self.counters.dense_rows += sum(item.rows for _, item in dense)

    def _copy_out(
        self,
        name: str,
        value: torch.Tensor,
        placed: list[tuple[int, Item]],
        asked: set[int],
        results: list[dict[str, torch.Tensor]],
    ) -> None:
        """`value`'s rows belong to `placed` (item index, item), in order: the rows of the items in `asked` go to
        host memory, one asynchronous copy per run of adjacent items."""
        for first, run in _runs(placed, asked):
            rows = sum(item.rows for _, item in run)
            host = self.arena.take((rows, *value.shape[1:]), torch.float32)
            host.copy_(value[first : first + rows], non_blocking=True)
            offset = 0
            for index, item in run:
                results[index][name] = host[offset : offset + item.rows]
                offset += item.rows
            self.counters.output_rows[name] += rows


def _rows_of(parts: list[tuple[int, Item]], chosen: set[int]) -> list[int]:
    """Batch row numbers of the chosen items, in order."""
    rows = spans([item.rows for _, item in parts])
    return [row for (index, _), span in zip(parts, rows) if index in chosen for row in range(span.start, span.stop)]


def _runs(placed: list[tuple[int, Item]], asked: set[int]) -> list[tuple[int, list[tuple[int, Item]]]]:
    """Maximal runs of adjacent asked-for items: (first row, items)."""
    runs: list[tuple[int, list[tuple[int, Item]]]] = []
    start = 0
    for index, item in placed:
        if index in asked:
            if runs and runs[-1][0] + sum(i.rows for _, i in runs[-1][1]) == start:
                runs[-1][1].append((index, item))
            else:
                runs.append((start, [(index, item)]))
        start += item.rows
    return runs


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for dim in shape:
        n *= int(dim)
    return n
