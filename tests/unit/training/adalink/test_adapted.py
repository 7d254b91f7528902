"""A frozen base with adapters: exactly the base when untrained, the serving stages' token sequence when trained,
several adapters over one untouched base."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from service.triton.models.tipsv2_stages import Adapter as ServingAdapter
from service.triton.models.tipsv2_stages import ImageEmbedStage, TextEmbedStage
from training.adalink.adapted import AdaptedTIPSv2
from training.adalink.checksum import state_checksum
from training.adalink.module import AdaLink
from training.contracts.adapter_file import adapter_bytes, build_metadata
from training.export.embed_stage import image_embed_arrays, save_arrays, text_embed_arrays
from training.tipsv2.model import TIPSv2

SIZE = 56


def pixels(batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, SIZE, SIZE), generator=generator).float() / 255.0


def ids(tokenizer) -> torch.Tensor:  # type: ignore[no-untyped-def]
    array, _ = tokenizer(["a photo of a sward.", "a survey tile of loch with a large ring and a tiny star."])
    return torch.from_numpy(array.astype(np.int64))


def randomised(model: AdaptedTIPSv2, seed: int = 0) -> AdaptedTIPSv2:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for adapter in model.adapters.values():
            adapter.up.weight.normal_(std=0.5, generator=generator)
    return model


@pytest.mark.parametrize("activation", ["identity", "relu", "gelu_tanh", "silu"])
def test_untrained_adapters_reproduce_the_base_outputs_exactly(base: TIPSv2, tokenizer, activation: str) -> None:  # type: ignore[no-untyped-def]
    adapted = AdaptedTIPSv2.fresh(base, ("image", "text"), 16, activation, torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = base.encode_image(pixels()), adapted.encode_image(pixels())
        for name in ("cls1", "cls2", "patch_tokens"):
            assert torch.equal(getattr(got, name), getattr(expected, name)), name
        assert torch.equal(adapted.encode_text(ids(tokenizer)), base.encode_text(ids(tokenizer)))


def test_base_is_frozen_and_only_adapters_train(base: TIPSv2) -> None:
    adapted = AdaptedTIPSv2.fresh(base, ("image",), 4, "relu")
    assert not any(p.requires_grad for p in base.parameters())
    assert [n for n, p in adapted.named_parameters() if p.requires_grad] == [
        "adapters.image.down.weight",
        "adapters.image.up.weight",
    ]
    adapted.train()
    assert not base.training  # the base stays in inference mode


def test_image_adapter_acts_on_all_tokens_as_the_serving_stage_does(base: TIPSv2, tmp_path: Path) -> None:
    adapted = randomised(AdaptedTIPSv2.fresh(base, ("image",), 8, "gelu_tanh"))
    stage = ImageEmbedStage(str(save_arrays(image_embed_arrays(base, [SIZE // 14]), tmp_path / "image.safetensors")))
    down, up = (t.numpy() for t in adapted.adapters["image"].tensors())
    uint8 = (pixels() * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    served = ServingAdapter(down, up, "gelu_tanh", 0).apply(stage(uint8))
    with torch.no_grad():
        ours = adapted.image_tokens(pixels()).numpy()
    assert ours.shape == served.shape == (2, 2 + (SIZE // 14) ** 2, base.cfg.embed_dim)
    np.testing.assert_allclose(ours, served, rtol=1e-4, atol=1e-4)
    # CLS1 (with its position) and CLS2 are adapted too: they differ from the base's
    with torch.no_grad():
        plain = base.visual.embed(pixels())
    assert not torch.allclose(torch.from_numpy(ours[:, :2]), plain[:, :2])


def test_text_adapter_acts_where_the_serving_stage_applies_it(base: TIPSv2, tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    adapted = randomised(AdaptedTIPSv2.fresh(base, ("text",), 8, "silu"))
    stage = TextEmbedStage(str(save_arrays(text_embed_arrays(base), tmp_path / "text.safetensors")))
    down, up = (t.numpy() for t in adapted.adapters["text"].tensors())
    tokens, _ = stage(ids(tokenizer).numpy().astype(np.int32))
    served = ServingAdapter(down, up, "silu", 0).apply(tokens)
    with torch.no_grad():
        np.testing.assert_allclose(adapted.text_tokens(ids(tokenizer)).numpy(), served, rtol=1e-4, atol=1e-4)


def test_several_adapters_share_one_base_that_never_changes(base: TIPSv2, tokenizer) -> None:  # type: ignore[no-untyped-def]
    before = state_checksum(base)
    with torch.no_grad():
        reference = base.encode_text(ids(tokenizer))
    first = randomised(AdaptedTIPSv2.fresh(base, ("image", "text"), 4, "relu"), seed=1)
    second = randomised(AdaptedTIPSv2.fresh(base, ("text",), 16, "identity"), seed=2)
    with torch.no_grad():
        a, b = first.encode_text(ids(tokenizer)), second.encode_text(ids(tokenizer))
        assert not torch.allclose(a, b) and not torch.allclose(a, reference)
        assert torch.equal(base.encode_text(ids(tokenizer)), reference)
    assert state_checksum(base) == before


def test_adapter_file_round_trips_into_the_same_model(base: TIPSv2, tokenizer) -> None:  # type: ignore[no-untyped-def]
    adapted = randomised(AdaptedTIPSv2.fresh(base, ("image", "text"), 8, "gelu_tanh"))
    meta = build_metadata("tipsv2-tiny", "0123456789abcdef", ("image", "text"), 8, base.cfg.embed_dim, "gelu_tanh", "t")
    data = adapter_bytes({k: v.numpy() for k, v in adapted.adapter_arrays().items()}, meta)
    loaded = AdaptedTIPSv2.from_adapter_file(base, data, base_hash="0123456789abcdef")
    with torch.no_grad():
        assert torch.equal(loaded.encode_text(ids(tokenizer)), adapted.encode_text(ids(tokenizer)))
        assert torch.equal(loaded.encode_image(pixels()).cls1, adapted.encode_image(pixels()).cls1)


def test_adapter_of_another_width_is_refused(base: TIPSv2) -> None:
    with pytest.raises(ValueError, match="width"):
        AdaptedTIPSv2(base, {"text": AdaLink(base.cfg.embed_dim * 2, 4)})
    with pytest.raises(ValueError, match="unknown modalities"):
        AdaptedTIPSv2(base, {"audio": AdaLink(base.cfg.embed_dim, 4)})
