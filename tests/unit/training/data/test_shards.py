"""WebDataset-style tar shards: grouping by key, random access by offset, missing files named."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from training.data.shards import RandomAccessReader, ShardWriter, index_shard, iter_shard, shard_paths, split_name


def test_split_name_takes_the_key_up_to_the_first_dot() -> None:
    assert split_name("train-00000001.mask.png") == ("train-00000001", "mask.png")
    assert split_name("dir/k.json") == ("dir/k", "json")
    with pytest.raises(ValueError, match=r"no key\.extension"):
        split_name("README")


def test_writer_groups_members_by_key_and_rolls_over_shards(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, "s", samples_per_shard=2) as writer:
        for i in range(3):
            writer.write(f"k{i}", {"json": b"{}", "txt": f"sample {i}".encode()})
    assert writer.shards == [{"name": "s-000000.tar", "num_samples": 2}, {"name": "s-000001.tar", "num_samples": 1}]
    with tarfile.open(tmp_path / "s-000000.tar") as tar:
        assert tar.getnames() == ["k0.json", "k0.txt", "k1.json", "k1.txt"]
        assert {m.mtime for m in tar.getmembers()} == {0}
    assert [(k, f["txt"]) for k, f in iter_shard(tmp_path / "s-000001.tar")] == [("k2", b"sample 2")]


def test_index_and_random_access_read_back_each_member(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, "s", samples_per_shard=10) as writer:
        for i in range(4):
            writer.write(f"k{i}", {"bin": bytes([i]) * (600 + i)})  # crosses tar's 512-byte blocks
    refs = index_shard(tmp_path / "s-000000.tar")
    reader = RandomAccessReader()
    assert [r.key for r in refs] == ["k0", "k1", "k2", "k3"]
    assert reader.read(refs[2])["bin"] == bytes([2]) * 602
    assert reader.read(refs[0])["bin"] == bytes([0]) * 600
    reader.close()


def test_writer_refuses_keys_that_would_break_grouping(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, "s", 1) as writer, pytest.raises(ValueError, match="must contain no"):
        writer.write("a.b", {"json": b""})


def test_shard_paths_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a shard dataset"):
        shard_paths(tmp_path)
    (tmp_path / "manifest.json").write_text('{"shards": [{"name": "gone.tar", "num_samples": 1}]}')
    with pytest.raises(FileNotFoundError, match=r"gone\.tar"):
        shard_paths(tmp_path)
