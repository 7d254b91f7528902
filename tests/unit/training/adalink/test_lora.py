"""The LoRA baseline: the base model when untrained, only the attention projections change, the base untouched."""

from __future__ import annotations

import copy

import torch

from training.adalink.adapted import freeze
from training.adalink.checksum import state_checksum
from training.adalink.lora import add_lora, attention_weights
from training.tipsv2.model import TIPSv2


def test_untrained_lora_is_the_base_model(base: TIPSv2) -> None:
    model = freeze(copy.deepcopy(base))
    add_lora(model, ("image", "text"), rank=4)
    pixels = torch.rand(2, 3, 56, 56)
    ids = torch.tensor([[5, 6, 7, 0, 0]])
    with torch.no_grad():
        assert torch.equal(model.encode_image(pixels).cls1, base.encode_image(pixels).cls1)
        assert torch.equal(model.encode_text(ids), base.encode_text(ids))


def test_lora_adapts_qkv_and_output_projection_of_every_block(base: TIPSv2) -> None:
    model = freeze(copy.deepcopy(base))
    params = add_lora(model, ("image", "text"), rank=4)
    D, image_depth, text_depth = base.cfg.embed_dim, base.cfg.vision_cfg.depth, base.cfg.text_cfg.depth
    per_block = 4 * (D + 3 * D) + 4 * (D + D)  # A (r, in) + B (out, r) for the fused qkv and the output projection
    assert sum(p.numel() for p in params) == (image_depth + text_depth) * per_block
    assert len(attention_weights(model, "image")) == 2 * image_depth
    assert len(attention_weights(model, "text")) == 2 * text_depth


def test_training_lora_moves_only_its_own_factors(base: TIPSv2) -> None:
    before = state_checksum(base)
    model = freeze(copy.deepcopy(base))
    params = add_lora(model, ("image",), rank=2, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(params, lr=0.1)
    loss = model.encode_image(torch.rand(2, 3, 56, 56)).cls1.square().sum()
    loss.backward()
    optimizer.step()
    assert all(p.grad is not None for p in params)
    assert not any(p.requires_grad for n, p in model.named_parameters() if "original" in n)
    assert state_checksum(base) == before
