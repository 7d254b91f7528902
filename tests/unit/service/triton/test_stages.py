"""The numpy embedding stages that run in Triton reproduce the PyTorch embedding layers; the numpy adapter bank
reads the real adapter format from the real store layout and refuses what it must not serve."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.triton.models.tipsv2_stages import AdapterBank, ImageEmbedStage, StageError, TextEmbedStage
from training.adalink.samples import random_part, store_adapter
from training.export.embed_stage import image_embed_arrays, save_arrays, text_embed_arrays


def test_text_stage_equals_torch_embed(tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stage = TextEmbedStage(str(save_arrays(text_embed_arrays(tiny_model), tmp_path / "t.safetensors")))
    ids = np.zeros((2, 64), np.int32)
    ids[0, :7] = np.arange(3, 10)
    ids[1, :2] = [40, 41]
    embeddings, mask = stage(ids)
    with torch.no_grad():
        want = tiny_model.text.embed(torch.from_numpy(ids).long()).numpy()
    assert np.abs(embeddings - want).max() <= 1e-5
    assert mask.tolist() == (ids != 0).astype(np.float32).tolist()


@pytest.mark.parametrize("resolution", [224, 112])
def test_image_stage_equals_torch_embed(tiny_model, tmp_path, resolution: int) -> None:  # type: ignore[no-untyped-def]
    arrays = image_embed_arrays(tiny_model, [resolution // 14])
    stage = ImageEmbedStage(str(save_arrays(arrays, tmp_path / "i.safetensors")))
    pixels = np.random.default_rng(0).integers(0, 256, (2, resolution, resolution, 3), dtype=np.uint8)
    tokens = stage(pixels)
    with torch.no_grad():
        want = tiny_model.visual.embed(torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255).numpy()
    assert tokens.shape == want.shape
    assert np.abs(tokens - want).max() <= 1e-5


def test_image_stage_refuses_unserved_resolution(tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stage = ImageEmbedStage(str(save_arrays(image_embed_arrays(tiny_model, [16]), tmp_path / "i.safetensors")))
    with pytest.raises(StageError, match="not served"):
        stage(np.zeros((1, 112, 112, 3), np.uint8))


def test_adapter_bank_refuses_unknown_adapter_instead_of_base(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bank = AdapterBank(str(tmp_path), "text", 8, "base", capacity=2)
    x = np.ones((2, 3, 8), np.float32)
    assert bank.apply(x, ["", ""]) is x
    with pytest.raises(StageError, match="unknown adapter"):
        bank.apply(x, ["t/a/1/abcd", ""])


def test_adapter_bank_applies_per_row_and_evicts_lru(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    ids = {
        n: store_adapter(
            tmp_path, "t", n, 1, {"text": random_part(rng, 8, 4, down_scale=0.3 / 8**0.5, up_scale=0.3)}, "base"
        )
        for n in "abc"
    }
    bank = AdapterBank(str(tmp_path), "text", 8, "base", capacity=2)
    x = rng.standard_normal((3, 5, 8)).astype(np.float32)
    out = bank.apply(x, [ids["a"], "", ids["b"]])
    adapter_a = bank.get(ids["a"])
    assert np.allclose(out[0], x[0] + (x[0] @ adapter_a.down.T) @ adapter_a.up.T, atol=1e-5)
    assert np.array_equal(out[1], x[1])
    bank.apply(x[:1], [ids["c"]])
    assert len(bank) == 2 and bank.stats.evictions == 1 and bank.stats.loads == 3


@pytest.mark.parametrize(
    ("adapter_id", "message"),
    [
        ("t/a/1", "malformed adapter id"),
        ("t/../1/abc", "malformed adapter id"),
        ("t/a/1/0000000000000000", "unknown adapter"),
    ],
)
def test_adapter_bank_refuses_bad_ids(tmp_path, adapter_id: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StageError, match=message):
        AdapterBank(str(tmp_path), "text", 8, "base", 4).get(adapter_id)


def test_adapter_bank_refuses_a_file_changed_after_upload(tmp_path) -> None:  # type: ignore[no-untyped-def]
    adapter_id = store_adapter(
        tmp_path,
        "t",
        "a",
        1,
        {"text": random_part(np.random.default_rng(1), 8, 2, down_scale=0.3 / 8**0.5, up_scale=0.3)},
        "b",
    )
    tenant, name, version, digest = adapter_id.split("/")
    path = tmp_path / tenant / name / f"v{version}-{digest}.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StageError, match="does not match its digest"):
        AdapterBank(str(tmp_path), "text", 8, "b", 4).get(adapter_id)


def test_adapter_bank_refuses_adapters_of_another_base_or_modality(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    other_base = store_adapter(
        tmp_path, "t", "a", 1, {"text": random_part(rng, 8, 2, down_scale=0.3 / 8**0.5, up_scale=0.3)}, "other-model"
    )
    image_only = store_adapter(
        tmp_path, "t", "b", 1, {"image": random_part(rng, 8, 2, down_scale=0.3 / 8**0.5, up_scale=0.3)}, "base"
    )
    bank = AdapterBank(str(tmp_path), "text", 8, "base", 4)
    with pytest.raises(StageError, match="another base model"):
        bank.get(other_base)
    with pytest.raises(StageError, match="no text part"):
        bank.get(image_only)
