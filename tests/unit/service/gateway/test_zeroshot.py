"""The gateway's numpy zero-shot math equals the torch operations the model library uses (the full pipelines are
compared end to end in tests/integration/test_gateway_zeroshot.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from service.gateway import zeroshot
from training.tipsv2 import zeroshot as reference
from training.tipsv2.windows import sliding_windows

rng = np.random.default_rng(0)


def test_classify_equals_the_reference() -> None:
    images, labels = rng.standard_normal((5, 32)).astype(np.float32), rng.standard_normal((7, 32)).astype(np.float32)
    want = reference.classify(torch.from_numpy(images), torch.from_numpy(labels), 0.01).numpy()
    got = zeroshot.classify(images, labels, 0.01)
    assert np.abs(got - want).max() <= 1e-5 and np.allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_label_embeddings_average_normalised_prompts_then_normalise() -> None:
    prompts = rng.standard_normal((3 * 4, 16)).astype(np.float32)
    t = F.normalize(torch.from_numpy(prompts), dim=-1).reshape(3, 4, -1)
    want = F.normalize(t.mean(dim=1), dim=-1).numpy()
    assert np.abs(zeroshot.label_embeddings(prompts, 3, 4) - want).max() <= 1e-6


@pytest.mark.parametrize(("source", "target"), [((16, 16), (224, 224)), ((16, 16), (300, 200)), ((8, 5), (7, 3))])
def test_bilinear_resize_equals_torch(source: tuple[int, int], target: tuple[int, int]) -> None:
    maps = rng.standard_normal((4, *source)).astype(np.float32)
    want = F.interpolate(torch.from_numpy(maps)[None], size=target, mode="bilinear", align_corners=False)[0].numpy()
    assert np.abs(zeroshot.resize_bilinear(maps, target) - want).max() <= 1e-5


def test_label_map_in_bands_equals_the_whole_argmax(monkeypatch: pytest.MonkeyPatch) -> None:
    scores = rng.standard_normal((6, 16, 16)).astype(np.float32)
    whole = zeroshot.resize_bilinear(scores, (123, 77)).argmax(axis=0)
    monkeypatch.setattr(zeroshot, "BAND_ELEMENTS", 6 * 77 * 5)  # bands of 5 rows
    assert (zeroshot.label_map(scores, (123, 77)) == whole).all()


def test_slide_probabilities_average_the_windows_softmax() -> None:
    windows = sliding_windows(56, 100, 56, 42)
    maps = rng.standard_normal((len(windows), 3, 4, 4)).astype(np.float32)
    probs = zeroshot.slide_probabilities(maps, windows, (56, 100))
    assert probs.shape == (3, 56, 100) and np.allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    # A column only the first window covers holds exactly that window's softmax.
    first = F.interpolate(torch.from_numpy(maps[:1]), size=(56, 56), mode="bilinear").softmax(dim=1)[0].numpy()
    assert np.abs(probs[:, :, :10] - first[:, :, :10]).max() <= 1e-5


def test_pixel_shares_sum_to_one() -> None:
    labels = np.array([[0, 0, 1], [2, 2, 2]])
    assert zeroshot.pixel_shares(labels, 4).tolist() == [2 / 6, 1 / 6, 3 / 6, 0.0]


@pytest.mark.parametrize(("n_labels", "mode"), [(3, "L"), (256, "L"), (300, "I;16")])
def test_label_png_round_trips_its_indices(n_labels: int, mode: str) -> None:
    labels = rng.integers(0, n_labels, (40, 30))
    image = Image.open(io.BytesIO(zeroshot.encode_label_png(labels, n_labels)))
    assert image.mode == mode and image.size == (30, 40)
    assert (np.array(image) == labels).all()
