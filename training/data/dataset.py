"""Reading generated shard datasets: random access by sample index, or a sequential stream.

`ShardSamples` is the reusable base for anything trained on these shards (the TIPSv2 recipe, AdaLink adapters):
`samples[i]` is the decoded `SynthSample` i of the dataset directory, in manifest order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from training.data.shards import RandomAccessReader, SampleRef, index_shard, iter_shard, read_manifest, shard_paths
from training.data.synth import SynthSample, decode_sample


def as_dirs(data: str | Path | Sequence[str | Path]) -> list[Path]:
    return [Path(data)] if isinstance(data, str | Path) else [Path(d) for d in data]


class ShardSamples:
    """Random access to the samples of one or more shard directories (indices run through them in order)."""

    def __init__(self, data: str | Path | Sequence[str | Path]) -> None:
        self.dirs = as_dirs(data)
        if not self.dirs:
            raise ValueError("no shard directory given")
        self.manifest: dict[str, Any] = read_manifest(self.dirs[0])
        self.refs: list[SampleRef] = []
        for directory in self.dirs:
            if read_manifest(directory)["segmentation_classes"] != self.manifest["segmentation_classes"]:
                raise ValueError(f"{directory} uses another class vocabulary than {self.dirs[0]}")
            for path in shard_paths(directory):
                self.refs.extend(index_shard(path))
        if not self.refs:
            raise ValueError(f"no samples in {', '.join(map(str, self.dirs))}")
        self._reader = RandomAccessReader()

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int) -> SynthSample:
        ref = self.refs[index]
        return decode_sample(ref.key, self._reader.read(ref))

    @property
    def segmentation_classes(self) -> list[str]:
        return list(self.manifest["segmentation_classes"])

    @property
    def classification_classes(self) -> list[str]:
        return list(self.manifest["classification_classes"])

    @property
    def ignore_index(self) -> int:
        return int(self.manifest["ignore_index"])


def iter_samples(data: str | Path | Sequence[str | Path], limit: int | None = None) -> Iterator[SynthSample]:
    """Streams decoded samples in manifest order, at most `limit` of them."""
    count = 0
    for directory in as_dirs(data):
        for path in shard_paths(directory):
            for key, files in iter_shard(path):
                if limit is not None and count >= limit:
                    return
                yield decode_sample(key, files)
                count += 1
