"""The AdaLink module: identity at initialisation, the serving stages' arithmetic, several adapters in one batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.triton.models.tipsv2_stages import Adapter as ServingAdapter
from training.adalink.module import ACTIVATIONS, AdaLink, apply_mixed
from training.contracts.adapter_file import ACTIVATIONS as FILE_ACTIVATIONS

D, R = 32, 8


def trained(activation: str, seed: int = 0, rank: int = R) -> AdaLink:
    generator = torch.Generator().manual_seed(seed)
    adapter = AdaLink(D, rank, activation)
    with torch.no_grad():
        adapter.down.weight.normal_(generator=generator)
        adapter.up.weight.normal_(std=0.1, generator=generator)
    return adapter


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_untrained_adapter_returns_its_input_bit_for_bit(activation: str) -> None:
    adapter = AdaLink(D, R, activation)
    x = torch.randn(3, 7, D) * 100
    assert torch.equal(adapter(x), x)
    assert torch.count_nonzero(adapter.up.weight) == 0 and torch.count_nonzero(adapter.down.weight) > 0


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_maps_zero_to_zero_so_rank_padding_is_exact(activation: str) -> None:
    assert torch.equal(ACTIVATIONS[activation](torch.zeros(4)), torch.zeros(4))


def test_module_and_file_format_offer_the_same_activations() -> None:
    assert sorted(ACTIVATIONS) == sorted(FILE_ACTIVATIONS)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_adapter_computes_what_the_numpy_serving_stage_computes(activation: str) -> None:
    adapter = trained(activation)
    x = torch.randn(2, 5, D)
    down, up = (t.numpy() for t in adapter.tensors())
    served = ServingAdapter(down, up, activation, down.nbytes + up.nbytes).apply(x.numpy())
    np.testing.assert_allclose(adapter(x).detach().numpy(), served, rtol=1e-5, atol=1e-5)


def test_tensors_round_trip_through_from_tensors() -> None:
    adapter = trained("silu")
    copy = AdaLink.from_tensors(*adapter.tensors(), "silu")
    x = torch.randn(4, D)
    assert torch.equal(copy(x), adapter(x))
    with pytest.raises(ValueError, match="expected"):
        AdaLink.from_tensors(torch.zeros(R, D), torch.zeros(D, R + 1), "silu")


def test_mixed_batch_applies_each_rows_own_adapter() -> None:
    adapters = [trained("relu", seed) for seed in range(3)]
    down = torch.stack([torch.zeros(R, D)] + [a.tensors()[0] for a in adapters])  # slot 0: the base model
    up = torch.stack([torch.zeros(D, R)] + [a.tensors()[1] for a in adapters])
    x = torch.randn(5, 6, D)
    slots = torch.tensor([2, 0, 1, 3, 2])
    mixed = apply_mixed(x, down, up, slots, "relu")
    for row, slot in enumerate(slots.tolist()):
        expected = x[row] if slot == 0 else adapters[slot - 1](x[row])
        torch.testing.assert_close(mixed[row], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("rank", "activation", "match"), [(0, "relu", "rank"), (D + 1, "relu", "rank"), (4, "tanh", "activation")]
)
def test_bad_rank_or_activation_is_refused(rank: int, activation: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdaLink(D, rank, activation)
