"""`tipsv2 encode` keeps the README contract: official-layout weights in, four raw float32 arrays out."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from service.tools.cli.main import main
from tests.unit.training.tipsv2.official_layout import OFFICIAL, fast_arrays, text_layout, vision_layout, write_official
from training.tipsv2.checkpoint import load_pretrained
from training.tipsv2.preprocess import resize_uint8, to_model_input
from training.tipsv2.tokenizer import Tokenizer


def write_image(path: Path, size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}.get(mode)
    shape = (size[1], size[0], channels) if channels else (size[1], size[0])
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


@pytest.fixture(scope="module")
def b14_weights(tmp_path_factory: pytest.TempPathFactory, tokenizer_path: Path) -> Path:
    """Official-layout B/14 files (196M random parameters, about 0.8 GB) written in seconds: tiled arrays."""
    directory = tmp_path_factory.mktemp("b14")
    geometry = OFFICIAL["b14"]
    write_official(directory, "b14", fast_arrays(vision_layout(geometry)), fast_arrays(text_layout(geometry)))
    shutil.copy(tokenizer_path, directory / "tokenizer.model")  # any SentencePiece model with ids < 32000
    return directory


def read_output(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def test_encode_writes_the_four_contract_arrays_for_b14(b14_weights: Path, tmp_path: Path) -> None:
    image = write_image(tmp_path / "a.jpg", (300, 200))
    out = tmp_path / "out" / "embeddings.npz"
    args = ["encode", "--weights", str(b14_weights), "--variant", "b14", "--resolution", "112", "--image", str(image)]
    assert main([*args, "--text", "a photo of a cat", "--text", "a dog", "--output", str(out)]) == 0
    arrays = read_output(out)
    assert {k: v.shape for k, v in arrays.items()} == {
        "image_cls": (1, 768),
        "image_cls2": (1, 768),
        "image_patch_tokens": (1, 8, 8, 768),  # 112 / 14: the positions are interpolated from 32 x 32
        "text_embeddings": (2, 768),
    }
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in arrays.values())
    assert not np.allclose(np.linalg.norm(arrays["image_cls"], axis=1), 1.0)  # raw, not normalised


def test_encode_outputs_are_the_towers_raw_outputs_in_input_order(tiny_weights: Path, tmp_path: Path) -> None:
    images = [write_image(tmp_path / f"{i}.png", (50 + 40 * i, 80), seed=i) for i in range(3)]
    images.append(write_image(tmp_path / "gray.png", (90, 90), mode="L", seed=9))
    texts = ["a red circle", "A BLUE SQUARE on grass", "x"]
    out = tmp_path / "tiny.npz"
    args = ["encode", "--weights", str(tiny_weights), "--variant", "tiny", "--image", *map(str, images)]
    assert main([*args, "--text", *texts, "--output", str(out)]) == 0
    arrays = read_output(out)
    model = load_pretrained(tiny_weights, "tiny")
    pixels = np.stack([to_model_input(resize_uint8(Image.open(p).convert("RGB"), 224)) for p in images])
    ids, _ = Tokenizer(tiny_weights / "tokenizer.model")(texts)
    with torch.no_grad():
        features = model.encode_image(torch.from_numpy(pixels))
        text = model.encode_text(torch.from_numpy(ids.astype(np.int64)))
    assert np.allclose(arrays["image_cls"], features.cls1.numpy(), atol=1e-6)
    assert np.allclose(arrays["image_cls2"], features.cls2.numpy(), atol=1e-6)
    assert np.allclose(arrays["image_patch_tokens"], features.patch_tokens.reshape(4, 16, 16, 64).numpy(), atol=1e-6)
    assert np.allclose(arrays["text_embeddings"], text.numpy(), atol=1e-6)


def test_encode_with_texts_only_gives_empty_image_arrays(tiny_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "texts.npz"
    assert (
        main(["encode", "--weights", str(tiny_weights), "--variant", "tiny", "--text", "hi", "--output", str(out)]) == 0
    )
    arrays = read_output(out)
    assert arrays["image_cls"].shape == (0, 64) and arrays["image_patch_tokens"].shape == (0, 16, 16, 64)
    assert arrays["text_embeddings"].shape == (1, 64)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--resolution", "230"], "not a positive multiple of the patch size 14"),
        (["--image", "missing.png"], "image missing.png does not exist"),
        (["--image", "broken.png"], "broken.png: the PNG data is truncated or corrupt"),
        ([], "nothing to encode"),
    ],
)
def test_encode_fails_with_a_clear_message_and_no_traceback(
    tiny_weights: Path, tmp_path: Path, monkeypatch, capsys, extra: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    args = ["encode", "--weights", str(tiny_weights), "--variant", "tiny", "--output", "out.npz", *extra]
    if extra and extra[0] == "--resolution":
        args += ["--text", "x"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out.npz").exists()


def test_encode_fails_clearly_when_weights_or_tokenizer_are_missing(tmp_path: Path, tiny_weights: Path, capsys) -> None:
    assert (
        main(["encode", "--weights", str(tmp_path / "nope"), "--variant", "b14", "--text", "x", "--output", "o.npz"])
        == 2
    )
    assert "weights directory" in capsys.readouterr().err
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("tips_v2_oss_tiny_vision.npz", "tips_v2_oss_tiny_text.npz"):
        shutil.copy(tiny_weights / name, partial / name)
    assert main(["encode", "--weights", str(partial), "--variant", "tiny", "--text", "x", "--output", "o.npz"]) == 2
    assert "tokenizer.model not found" in capsys.readouterr().err
    assert main(["encode", "--weights", str(tmp_path), "--variant", "b14", "--text", "x", "--output", "o.npz"]) == 2
    assert "tokenizer.model not found" in capsys.readouterr().err
