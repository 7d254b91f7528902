"""The torch embedding stages and the device-resident adapter bank equal the numpy stages and plain PyTorch.

Run on CPU torch here; on a GPU the same code runs with device="cuda" (see bench/serving_gpu.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.triton.models.tipsv2_stages import AdapterBank, ImageEmbedStage, StageError, TextEmbedStage
from service.triton.models.tipsv2_stages_torch import (
    MIN_RANK,
    DeviceAdapterBank,
    TorchImageEmbedStage,
    TorchTextEmbedStage,
)
from training.adalink.module import ACTIVATIONS as ACTIVATIONS_TORCH
from training.adalink.samples import random_part, store_adapter
from training.contracts.activations import NAMES as ACTIVATIONS
from training.export.embed_stage import image_embed_arrays, save_arrays, text_embed_arrays

D = 16
TORCH_ACT = ACTIVATIONS_TORCH  # what training's AdaLink module computes: the reference


@pytest.fixture
def store(tmp_path):  # type: ignore[no-untyped-def]
    """Nine adapters of mixed ranks and activations (one stored as float16), as the gateway writes them."""
    rng = np.random.default_rng(0)
    adapters = {}
    for i, rank in enumerate((1, 2, 3, 4, 5, 8, 12, 16, 7)):
        activation = ACTIVATIONS[i % 4]
        down, up = random_part(rng, D, rank, down_scale=1.0 / D**0.5, up_scale=1.0)
        dtype = "float16" if i == 8 else "float32"
        adapter_id = store_adapter(
            tmp_path, "acme", f"a{i}", 1, {"text": (down, up)}, "base", activation=activation, dtype=dtype
        )
        adapters[adapter_id] = (down.astype(dtype).astype(np.float32), up.astype(dtype).astype(np.float32), activation)
    return tmp_path, adapters


def plain_torch(x: torch.Tensor, down: np.ndarray, up: np.ndarray, activation: str) -> torch.Tensor:
    return x + TORCH_ACT[activation](x @ torch.from_numpy(down).T) @ torch.from_numpy(up).T


def test_device_bank_equals_plain_pytorch_and_numpy_on_a_mixed_batch(store) -> None:  # type: ignore[no-untyped-def]
    root, adapters = store
    ids = [*adapters, "", ""]
    x = torch.randn(len(ids), 5, D, generator=torch.Generator().manual_seed(0))
    bank = DeviceAdapterBank(str(root), "text", D, "base", capacity=16, device="cpu")
    got = bank.apply(x, bank.slots(ids))
    want = torch.stack([plain_torch(x[i], *adapters[a]) if a else x[i] for i, a in enumerate(ids)])
    numpy_bank = AdapterBank(str(root), "text", D, "base", capacity=16)
    assert (got - want).abs().max() <= 1e-5
    assert np.abs(got.numpy() - numpy_bank.apply(x.numpy(), ids)).max() <= 1e-5
    assert torch.equal(got[-2:], x[-2:])  # base rows pass through bit for bit
    assert (got[:-2] - x[:-2]).abs().amax(dim=(1, 2)).min() > 1e-3  # and every adapter changed its row


def test_device_bank_pads_ranks_and_grows_when_a_larger_adapter_arrives(store) -> None:  # type: ignore[no-untyped-def]
    root, adapters = store
    small, large = next(iter(adapters)), list(adapters)[7]  # rank 1, then rank 16
    bank = DeviceAdapterBank(str(root), "text", D, "base", capacity=4, device="cpu")
    x = torch.randn(2, 3, D)
    before = bank.apply(x, bank.slots([small, ""]))
    assert bank.rank == MIN_RANK
    after = bank.apply(x, bank.slots([small, large]))
    assert bank.rank == 16 and tuple(bank.down.shape) == (5, 16, D) and tuple(bank.up.shape) == (5, D, 16)
    assert (after[0] - before[0]).abs().max() <= 1e-6
    assert (after[1] - plain_torch(x[1], *adapters[large])).abs().max() <= 1e-5


def test_device_bank_evicts_the_least_recently_used_adapter_at_capacity(store) -> None:  # type: ignore[no-untyped-def]
    root, adapters = store
    a, b, c, d = list(adapters)[:4]
    bank = DeviceAdapterBank(str(root), "text", D, "base", capacity=3, device="cpu")
    bank.slots([a, b, c])
    bank.slots([a])  # a is now the most recently used
    slot_of_b = bank.slots([b])[0]
    bank.slots([a])
    slots = bank.slots([d])  # evicts c (b and a were used after it)
    assert bank.resident() == [b, a, d] and len(bank) == 3
    assert bank.stats.loads == 4 and bank.stats.evictions == 1
    assert slots[0] != slot_of_b
    x = torch.randn(1, 2, D)
    assert (bank.apply(x, slots)[0] - plain_torch(x[0], *adapters[d])).abs().max() <= 1e-5


def test_device_bank_groups_requests_so_that_no_batch_evicts_its_own_adapters(store) -> None:  # type: ignore[no-untyped-def]
    root, adapters = store
    ids = list(adapters)
    bank = DeviceAdapterBank(str(root), "text", D, "base", capacity=3, device="cpu")
    requests = [[ids[0], ids[1]], [ids[2], ""], ["acme/none/1/0000000000000000"], [ids[3]], [ids[4], ids[0]]]
    errors: dict[int, str] = {}
    x = torch.randn(2, 3, D)
    seen = []
    for group in bank.groups(requests, errors):
        assert len({a for i, _ in group for a in requests[i] if a}) <= 3
        for index, slots in group:  # every member's adapters are still in place when its group runs
            out = bank.apply(x[: len(slots)], slots)
            for row, adapter_id in enumerate(requests[index]):
                if adapter_id:
                    assert (out[row] - plain_torch(x[row], *adapters[adapter_id])).abs().max() <= 1e-5
            seen.append(index)
    assert seen == [0, 1, 3, 4]
    assert list(errors) == [2] and "unknown adapter" in errors[2]


def test_device_bank_refuses_a_request_with_more_adapters_than_it_holds(store) -> None:  # type: ignore[no-untyped-def]
    root, adapters = store
    bank = DeviceAdapterBank(str(root), "text", D, "base", capacity=2, device="cpu")
    with pytest.raises(StageError, match="holds at most 2"):
        bank.slots(list(adapters)[:3])
    with pytest.raises(StageError, match="unknown adapter"):
        bank.slots(["acme/none/1/0000000000000000"])
    assert len(bank) == 0 and bank.stats.loads == 0


def test_torch_text_stage_equals_numpy_stage_and_the_model(tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    weights = str(save_arrays(text_embed_arrays(tiny_model), tmp_path / "t.safetensors"))
    ids = np.zeros((3, 64), np.int32)
    ids[0, :9] = np.arange(5, 14)
    ids[1, :3] = [999, 2, 7]
    stage = TorchTextEmbedStage(weights, "cpu")
    stage.check(torch.from_numpy(ids))
    embeddings, mask = stage(torch.from_numpy(ids))
    numpy_embeddings, numpy_mask = TextEmbedStage(weights)(ids)
    with torch.no_grad():
        want = tiny_model.text.embed(torch.from_numpy(ids).long())
    assert (embeddings - want).abs().max() <= 1e-5
    assert np.abs(embeddings.numpy() - numpy_embeddings).max() <= 1e-5
    assert np.array_equal(mask.numpy(), numpy_mask)
    with pytest.raises(StageError, match="token ids"):
        stage.check(torch.full((1, 64), 1000, dtype=torch.int32))


@pytest.mark.parametrize("resolution", [224, 112])
def test_torch_image_stage_equals_numpy_stage_and_the_model(tiny_model, tmp_path, resolution: int) -> None:  # type: ignore[no-untyped-def]
    weights = str(save_arrays(image_embed_arrays(tiny_model, [16, 8]), tmp_path / "i.safetensors"))
    pixels = np.random.default_rng(1).integers(0, 256, (2, resolution, resolution, 3), dtype=np.uint8)
    stage = TorchImageEmbedStage(weights, "cpu")
    stage.check(torch.from_numpy(pixels))
    tokens = stage(torch.from_numpy(pixels))
    with torch.no_grad():
        want = tiny_model.visual.embed(torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255)
    assert tokens.shape == want.shape
    assert (tokens - want).abs().max() <= 1e-5
    assert np.abs(tokens.numpy() - ImageEmbedStage(weights)(pixels)).max() <= 1e-5
    with pytest.raises(StageError, match="not served"):
        stage.check(torch.zeros(1, 56, 56, 3, dtype=torch.uint8))
