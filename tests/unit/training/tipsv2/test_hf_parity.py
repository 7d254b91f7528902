"""A second, independent implementation agrees: transformers' `Tipsv2Model` (5.24), loaded with our tiny weights
converted to its layout, gives the same CLS1, CLS2, patch tokens and text embeddings."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from transformers import Tipsv2Config, Tipsv2Model

from tests.unit.training.tipsv2.official_layout import TINY, random_arrays, text_layout, vision_layout
from training.tipsv2.checkpoint import load_tower
from training.tipsv2.configs import get_model_config
from training.tipsv2.hf_convert import hf_config_kwargs, to_hf_state_dict
from training.tipsv2.model import TIPSv2, create_model
from training.tipsv2.zeroshot import classify


@pytest.fixture(scope="module")
def models() -> tuple[TIPSv2, Tipsv2Model]:
    ours = create_model("tiny").eval()
    load_tower(ours.visual, random_arrays(vision_layout(TINY), seed=21), "vision")
    load_tower(ours.text, random_arrays(text_layout(TINY), seed=22), "text")
    theirs = Tipsv2Model(Tipsv2Config(**hf_config_kwargs(ours.cfg))).eval()
    theirs.load_state_dict(to_hf_state_dict(ours), strict=True)
    return ours, theirs


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return float((a - b).abs().max() / b.abs().max()) < 1e-5


@pytest.mark.parametrize("size", [(224, 224), (168, 308)])
def test_image_outputs_equal_transformers_port(models, size: tuple[int, int]) -> None:
    ours, theirs = models
    pixels = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = ours.encode_image(pixels)
        sequence = theirs.get_image_features(pixel_values=pixels).last_hidden_state
    assert close(features.cls1, sequence[:, 0]) and close(features.cls2, sequence[:, 1])
    assert close(features.patch_tokens, sequence[:, 2:])


def test_text_embeddings_equal_transformers_port(models) -> None:
    ours, theirs = models
    ids = torch.randint(2, TINY.vocab, (3, 64), generator=torch.Generator().manual_seed(1))
    ids[0, 5:] = 0
    ids[1, 40:] = 0
    with torch.no_grad():
        pooled = theirs.get_text_features(input_ids=ids, attention_mask=(ids != 0).long()).pooler_output
        assert close(ours.encode_text(ids), pooled)


def test_zero_shot_classification_equals_transformers_port(models) -> None:
    ours, theirs = models
    pixels = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    ids = torch.randint(2, TINY.vocab, (4, 64), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = theirs(pixel_values=pixels, input_ids=ids, attention_mask=torch.ones_like(ids)).logits_per_image
        probs = classify(ours.encode_image(pixels).cls1, ours.encode_text(ids), float(ours.temperature))
    assert close(probs, logits.softmax(dim=-1))


def test_swiglu_conversion_of_g14_equals_transformers_port() -> None:
    cfg = get_model_config("tiny")
    cfg = replace(cfg, vision_cfg=replace(cfg.vision_cfg, ffn_layer="swiglufused"))
    ours = TIPSv2(cfg).init_weights(seed=5).eval()
    theirs = Tipsv2Model(Tipsv2Config(**hf_config_kwargs(cfg))).eval()
    theirs.load_state_dict(to_hf_state_dict(ours), strict=True)
    pixels = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        sequence = theirs.get_image_features(pixel_values=pixels).last_hidden_state
        assert close(ours.encode_image(pixels).patch_tokens, sequence[:, 2:])
