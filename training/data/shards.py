"""WebDataset-style tar shards: write them deterministically, stream them, or index them for random access.

Layout (the WebDataset convention): a sample is the run of consecutive tar members sharing a key, the key being
the member name up to its first dot and the rest its extension, e.g. `train-000042.png`, `train-000042.json`,
`train-000042.mask.png`. Any WebDataset reader can read these shards; this module needs only the standard library.

Writing is byte-for-byte reproducible (fixed mtime, owner and mode), so a seed fully determines a dataset's files.
Random access reads a member at its offset in the uncompressed tar, which is what makes the training loader's data
position exact and resumable (`training.data.dataset`).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

MANIFEST = "manifest.json"


def split_name(name: str) -> tuple[str, str]:
    """`dir/train-000042.mask.png` -> (`dir/train-000042`, `mask.png`)."""
    directory, _, base = name.rpartition("/")
    key, dot, ext = base.partition(".")
    if not dot or not key:
        raise ValueError(f"tar member {name!r} has no key.extension name")
    return (f"{directory}/{key}" if directory else key), ext


class ShardWriter:
    """Writes samples into `{prefix}-{first_index + k:06d}.tar` files of at most `samples_per_shard` samples each."""

    def __init__(self, directory: str | Path, prefix: str, samples_per_shard: int, first_index: int = 0) -> None:
        if samples_per_shard <= 0:
            raise ValueError("samples_per_shard must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.samples_per_shard = samples_per_shard
        self.first_index = first_index  # lets parallel jobs each write their own numbered shard
        self.shards: list[dict[str, Any]] = []
        self._tar: tarfile.TarFile | None = None

    def _open_next(self) -> tarfile.TarFile:
        name = f"{self.prefix}-{self.first_index + len(self.shards):06d}.tar"
        self.shards.append({"name": name, "num_samples": 0})
        return tarfile.open(self.directory / name, "w", format=tarfile.USTAR_FORMAT)

    def write(self, key: str, files: dict[str, bytes]) -> None:
        if "." in key or "/" in key:
            raise ValueError(f"sample key {key!r} must contain no '.' or '/'")
        if self._tar is None or self.shards[-1]["num_samples"] >= self.samples_per_shard:
            self.close()
            self._tar = self._open_next()
        for ext in sorted(files):
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(files[ext]), 0, 0o644
            self._tar.addfile(info, io.BytesIO(files[ext]))
        self.shards[-1]["num_samples"] += 1

    def close(self) -> list[dict[str, Any]]:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        return self.shards

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_shard(path: str | Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Streams (key, {extension: bytes}) samples of one shard in order."""
    key: str | None = None
    files: dict[str, bytes] = {}
    with tarfile.open(path, "r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            member_key, ext = split_name(member.name)
            if key is not None and member_key != key:
                yield key, files
                files = {}
            key = member_key
            handle = tar.extractfile(member)
            assert handle is not None  # a regular file always has a handle
            files[ext] = handle.read()
    if key is not None:
        yield key, files


@dataclass(frozen=True)
class SampleRef:
    """Where one sample's members are: (offset, size) of each extension inside an uncompressed tar."""

    shard: Path
    key: str
    members: dict[str, tuple[int, int]] = field(hash=False)


def index_shard(path: str | Path) -> list[SampleRef]:
    """Reads only the tar headers of a shard and returns its samples in order."""
    refs: list[SampleRef] = []
    path = Path(path)
    with tarfile.open(path, "r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, ext = split_name(member.name)
            if not refs or refs[-1].key != key:
                refs.append(SampleRef(path, key, {}))
            refs[-1].members[ext] = (member.offset_data, member.size)
    return refs


class RandomAccessReader:
    """Reads indexed samples; one open file per shard per process (safe across DataLoader worker forks)."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._handles: dict[Path, BinaryIO] = {}

    def read(self, ref: SampleRef) -> dict[str, bytes]:
        if os.getpid() != self._pid:  # a forked worker must not share the parent's file offsets
            self._handles, self._pid = {}, os.getpid()
        handle = self._handles.get(ref.shard)
        if handle is None:
            handle = self._handles[ref.shard] = open(ref.shard, "rb")  # noqa: SIM115  (kept open for reuse)
        out = {}
        for ext, (offset, size) in ref.members.items():
            handle.seek(offset)
            out[ext] = handle.read(size)
        return out

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"_pid": -1, "_handles": {}}


def write_manifest(directory: str | Path, manifest: dict[str, Any]) -> Path:
    path = Path(directory) / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} is not a shard dataset: no {MANIFEST} (write one with `tipsv2 data synth`)"
        )
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def shard_paths(directory: str | Path) -> list[Path]:
    """The dataset's shard files in manifest order; fails naming any that is missing."""
    directory = Path(directory)
    paths = [directory / shard["name"] for shard in read_manifest(directory)["shards"]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"shards listed in {directory / MANIFEST} are missing: {', '.join(missing)}")
    return paths
