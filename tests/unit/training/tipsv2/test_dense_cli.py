"""`tipsv2 dense` keeps the README contract: official-layout weights and decoders in, maps at each image's own size
out (depth as 16-bit millimetres, normals as RGB, ADE20K labels), equal to the independent reference pipeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from service.tools.cli.main import main
from tests.unit.training.tipsv2 import dpt_reference, reference
from tests.unit.training.tipsv2.dpt_layout import dpt_layout, random_dpt_arrays, write_dpt_zip
from training.tipsv2.checkpoint import read_npz
from training.tipsv2.dense_maps import depth_to_mm, normals_to_rgb
from training.tipsv2.preprocess import resize_uint8, to_model_input

TASKS = ("segmentation", "depth", "normals")
VISION = "tips_v2_oss_tiny_vision.npz"


@pytest.fixture(scope="module")
def dense_weights(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> Path:
    """The tiny image tower plus three random tiny decoders, in the official layouts."""
    directory = tmp_path_factory.mktemp("dense")
    shutil.copy(tiny_weights / VISION, directory / VISION)
    for seed, task in enumerate(TASKS):
        arrays = random_dpt_arrays(dpt_layout(64, task), seed=40 + seed)
        if task == "normals":  # facing the camera, so unit normals are well conditioned (see test_dpt.py)
            arrays["decoder/pixel_normals/bias"] += np.float32([0, 0, 6])
        write_dpt_zip(directory / f"tips_v2_tiny_{task}_dpt.zip", arrays)
    return directory


def write_image(path: Path, size: tuple[int, int], seed: int = 0) -> Path:
    """A smooth random photo-like image (width, height) = size."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    Image.fromarray(small).resize(size, Image.Resampling.BICUBIC).save(path)
    return path


def run_dense(weights: Path, out: Path, *extra: str) -> int:
    return main(["dense", "--weights", str(weights), "--variant", "tiny", "--output", str(out), *extra])


def test_dense_writes_every_map_at_the_images_own_size(dense_weights: Path, tmp_path: Path) -> None:
    image = write_image(tmp_path / "room.jpg", (90, 60))  # 90 wide, 60 high, not square: resized to 112 for the model
    out = tmp_path / "out"
    assert run_dense(dense_weights, out, "--image", str(image), "--resolution", "112", "--format", "both") == 0

    depth_png, depth = Image.open(out / "room.depth.png"), np.load(out / "room.depth.npy")
    assert depth_png.size == (90, 60) and depth.shape == (60, 90) and depth.dtype == np.float32
    assert depth_png.mode.startswith("I") and np.array_equal(np.asarray(depth_png), depth_to_mm(depth))  # 16-bit mm
    assert 0.001 <= depth.min() and depth.max() <= 10.0

    normals_png, normals = Image.open(out / "room.normals.png"), np.load(out / "room.normals.npy")
    assert normals_png.mode == "RGB" and normals_png.size == (90, 60) and normals.shape == (60, 90, 3)
    assert np.allclose(np.linalg.norm(normals, axis=-1), 1.0, atol=1e-5)
    assert np.array_equal(np.asarray(normals_png), normals_to_rgb(normals))

    labels_png, labels = Image.open(out / "room.segmentation.png"), np.load(out / "room.segmentation.npy")
    assert labels_png.mode == "L" and labels.dtype == np.uint8 and np.array_equal(np.asarray(labels_png), labels)
    assert labels.shape == (60, 90) and labels.max() < 150

    summary = json.loads((out / "dense.json").read_text())
    entry = summary["images"][0]
    assert (entry["height"], entry["width"], summary["resolution"]) == (60, 90, 112)
    assert entry["depth"]["median_m"] == pytest.approx(float(np.median(depth)))
    shares = {c["class"]: c["share"] for c in entry["segmentation"]["classes"]}
    top = np.bincount(labels.ravel()).argmax()
    assert entry["segmentation"]["classes"][0]["index"] == top and sum(shares.values()) <= 1.0 + 1e-9
    assert sorted(entry["normals"]["files"]) == ["room.normals.npy", "room.normals.png"]


def test_dense_maps_equal_the_independent_reference_pipeline(dense_weights: Path, tmp_path: Path) -> None:
    """Reference tower intermediates (numpy float64) -> reference DPT (float64, float32 sampling positions as a float32
    run) -> maps at the image's size; the CLI (float32 throughout) agrees to 1e-5 relative."""
    image = write_image(tmp_path / "scene.png", (75, 52), seed=1)
    out = tmp_path / "out"
    assert run_dense(dense_weights, out, "--image", str(image), "--resolution", "126", "--format", "npy") == 0
    pixels = to_model_input(resize_uint8(Image.open(image).convert("RGB"), 126))[None].astype(np.float64)
    layers = reference.intermediate_layers(read_npz(dense_weights / VISION), pixels, [0, 1, 2, 3], heads=4)
    features = [(c.astype(np.float32), p.astype(np.float32)) for c, p in layers]
    size = (52, 75)

    def reference_head(task: str) -> tuple[dpt_reference.Arrays, torch.Tensor]:
        a = dpt_reference.as_tensors(read_npz(dense_weights / f"tips_v2_tiny_{task}_dpt.zip"), torch.float64)
        return a, dpt_reference.body(a, features, np.float32)

    depth = dpt_reference.depth_metres(*reference_head("depth"), size, np.float32)[0, 0]
    assert np.abs(np.load(out / "scene.depth.npy") - depth).max() / np.abs(depth).max() < 1e-5
    normals = dpt_reference.unit_normals(*reference_head("normals"), size, np.float32)[0].transpose(1, 2, 0)
    assert np.abs(np.load(out / "scene.normals.npy") - normals).max() < 1e-5
    logits = dpt_reference.segmentation_logits(*reference_head("segmentation"), size, np.float32)[0]
    top2 = np.sort(logits, axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-4 * np.abs(logits).max()  # pixels whose argmax rounding cannot flip
    assert clear.mean() > 0.99
    assert np.array_equal(np.load(out / "scene.segmentation.npy")[clear], logits.argmax(0)[clear])


def test_a_photo_stored_sideways_gets_maps_in_its_displayed_orientation(dense_weights: Path, tmp_path: Path) -> None:
    """EXIF orientation 6 (stored 90 wide x 60 high, shown rotated: 60 x 90): maps come out as displayed, equal to
    those of the upright picture."""
    stored = Image.open(write_image(tmp_path / "stored.png", (90, 60), seed=3))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    stored.save(tmp_path / "phone.jpg", quality=95, exif=exif)
    upright = ImageOps.exif_transpose(Image.open(tmp_path / "phone.jpg"))
    upright.save(tmp_path / "upright.png")
    out = tmp_path / "out"
    args = ["--image", str(tmp_path / "phone.jpg"), str(tmp_path / "upright.png"), "--head", "depth", "normals"]
    assert run_dense(dense_weights, out, *args, "--resolution", "56", "--format", "both") == 0
    assert Image.open(out / "phone.depth.png").size == (60, 90) == upright.size
    assert np.array_equal(np.load(out / "phone.depth.npy"), np.load(out / "upright.depth.npy"))
    assert np.array_equal(np.load(out / "phone.normals.npy"), np.load(out / "upright.normals.npy"))


def test_only_the_heads_and_formats_asked_for_are_written(dense_weights: Path, tmp_path: Path) -> None:
    images = [write_image(tmp_path / f"{name}.png", (40, 30), seed=i) for i, name in enumerate(("a", "b"))]
    out = tmp_path / "out"
    assert run_dense(dense_weights, out, "--image", *map(str, images), "--head", "depth", "--resolution", "56") == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.depth.png", "b.depth.png", "dense.json"]
    assert [
        sorted(k for k in e if k not in ("image", "height", "width"))
        for e in json.loads((out / "dense.json").read_text())["images"]
    ] == [["depth"], ["depth"]]


@pytest.mark.parametrize(
    ("setup", "extra", "message"),
    [
        ("no-normals", [], "no normals decoder in"),
        (None, ["--image", "missing.png"], "image missing.png does not exist"),
        (None, ["--image", "notes.png"], "notes.png: the bytes are text, not an image"),
        (None, ["--image", "a.png", "--image", "sub/a.png"], "two images share a file stem"),
        (None, ["--image", "a.png", "--resolution", "100"], "not a positive multiple of the patch size 14"),
    ],
)
def test_dense_fails_with_a_clear_message_before_reading_weights(
    dense_weights: Path, tmp_path: Path, monkeypatch, capsys, setup: str | None, extra: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "weights"
    shutil.copytree(dense_weights, weights)
    (weights / VISION).write_bytes(b"not read: every check comes first")
    if setup == "no-normals":
        (weights / "tips_v2_tiny_normals_dpt.zip").unlink()
        extra = ["--image", "a.png"]
    write_image(tmp_path / "a.png", (20, 20))
    (tmp_path / "sub").mkdir()
    write_image(tmp_path / "sub" / "a.png", (20, 20))
    (tmp_path / "notes.png").write_text("not an image")
    assert run_dense(weights, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
