"""The torch-free parts of the library (shared with the gateway): geometry of the segmentation protocol, prompts,
preprocessing and tokenisation as the official code does them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from training.tipsv2.preprocess import check_resolution, resize_short_side, resize_uint8, to_model_input
from training.tipsv2.tokenizer import PAD_ID, Tokenizer, ascii_lower
from training.tipsv2.windows import Window, short_side_size, sliding_windows


def test_gateway_side_modules_import_without_torch() -> None:
    code = (
        "import sys; import training.tipsv2, training.tipsv2.prompts, training.tipsv2.windows, "
        "training.tipsv2.preprocess, training.tipsv2.tokenizer, training.tipsv2.download, training.data.vocabulary, "
        "training.tipsv2.heads, training.tipsv2.dense_maps; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_short_side_resize_matches_the_notebook_on_an_ade20k_image() -> None:
    # The notebook's own output: a 512 x 683 ADE20K image becomes 448 x 597.
    assert short_side_size(512, 683, 448) == (448, 597)
    assert short_side_size(683, 512, 448) == (597, 448)
    assert short_side_size(448, 1000, 448) == (448, 1000)  # the short side already fits: untouched


def test_sliding_windows_for_the_official_448_window_and_336_stride() -> None:
    assert sliding_windows(448, 597, 448, 336) == [Window(0, 448, 0, 448), Window(0, 448, 149, 597)]


@pytest.mark.parametrize(
    ("height", "width", "side", "stride"), [(448, 1500, 448, 336), (224, 225, 224, 168), (100, 90, 224, 168)]
)
def test_sliding_windows_cover_every_pixel_with_equal_windows(height: int, width: int, side: int, stride: int) -> None:
    windows = sliding_windows(height, width, side, stride)
    covered = np.zeros((height, width), dtype=int)
    for w in windows:
        covered[w.top : w.bottom, w.left : w.right] += 1
    assert covered.min() >= 1
    assert {(w.bottom - w.top, w.right - w.left) for w in windows} == {(min(side, height), min(side, width))}


def test_short_side_pil_resize_is_bicubic_on_the_short_side() -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 683, 3), dtype=np.uint8))
    resized = resize_short_side(image, 448)
    assert resized.size == (597, 448)
    assert np.array_equal(np.asarray(resized), np.asarray(image.resize((597, 448), Image.Resampling.BICUBIC)))


def test_model_input_is_bilinear_square_resize_in_zero_one_without_normalisation() -> None:
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (60, 90, 3), dtype=np.uint8))
    pixels = to_model_input(resize_uint8(image, 28))
    expected = np.asarray(image.resize((28, 28), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    assert pixels.shape == (3, 28, 28) and pixels.dtype == np.float32
    assert np.array_equal(pixels, expected.transpose(2, 0, 1))
    with pytest.raises(ValueError, match="multiple of the patch size 14"):
        check_resolution(450)


def test_tokenizer_lower_cases_ascii_only_like_tf_strings_lower() -> None:
    assert ascii_lower("A Photo of ÉCOLE, ΣΑ") == "a photo of École, ΣΑ"


def test_tokenizer_pads_with_zero_and_truncates_at_64(tokenizer_path) -> None:
    tokenizer = Tokenizer(tokenizer_path)
    ids, lengths = tokenizer(["A Red Circle", "circle " * 100, ""])
    assert ids.shape == (3, 64) and ids.dtype == np.int32
    assert tokenizer.encode("A Red Circle") == tokenizer.encode("a red circle")
    assert lengths[0] > 0 and (ids[0, lengths[0] :] == PAD_ID).all() and (ids[0, : lengths[0]] != PAD_ID).all()
    assert lengths[1] == 64 and (ids[1] != PAD_ID).all()
    assert lengths[2] == 0 and (ids[2] == PAD_ID).all()
