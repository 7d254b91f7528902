"""The requests of one `execute` (Triton's dynamic batch) as batches: grouped by input shape, their rows run
together, the results split back per request. One helper for every model here; it slices, so numpy arrays and torch
tensors alike (each caller concatenates with its own library)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

Member = TypeVar("Member")


def by_shape(members: Sequence[Member], shape_of: Callable[[Member], Hashable]) -> list[list[Member]]:
    """`members` grouped by `shape_of(member)` (requests of different shapes, e.g. resolutions, cannot share a
    run), each group in its original order, the groups in the order of their first member."""
    groups: dict[Hashable, list[Member]] = {}
    for member in members:
        groups.setdefault(shape_of(member), []).append(member)
    return list(groups.values())


def spans(sizes: Sequence[int]) -> list[slice]:
    """The rows of each part in the concatenation of parts of `sizes` rows."""
    out, start = [], 0
    for size in sizes:
        out.append(slice(start, start + size))
        start += size
    return out


def split(value: Any, sizes: Sequence[int]) -> list[Any]:
    """A batch's result (rows first) cut back into the parts it was concatenated from."""
    return [value[rows] for rows in spans(sizes)]
