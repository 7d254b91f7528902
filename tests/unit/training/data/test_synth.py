"""The generator: deterministic per seed, masks exactly true of the drawn shapes, captions true of the scene."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from training.data.dataset import ShardSamples, iter_samples
from training.data.render import render_scene
from training.data.synth import generate_dataset, make_sample
from training.data.vocabulary import BACKGROUNDS, SEGMENTATION_CLASSES, SHAPES, segmentation_class_id
from training.data.world import Scene, SceneObject


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_synth_writes_identical_bytes_for_the_same_seed_whatever_the_sharding(tmp_path: Path) -> None:
    a = generate_dataset(tmp_path / "a", 6, samples_per_shard=4, image_size=32, seed=3)
    generate_dataset(tmp_path / "b", 6, samples_per_shard=4, image_size=32, seed=3, workers=2)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    c = generate_dataset(tmp_path / "c", 6, samples_per_shard=6, image_size=32, seed=3)
    assert [s.meta for s in iter_samples(tmp_path / "a")] == [s.meta for s in iter_samples(tmp_path / "c")]
    assert [s.key for s in iter_samples(tmp_path / "c")] == [f"train-{i:08d}" for i in range(6)]
    assert a["shards"] == [
        {"name": "train-000000.tar", "num_samples": 4},
        {"name": "train-000001.tar", "num_samples": 2},
    ]
    assert c["segmentation_classes"] == list(SEGMENTATION_CLASSES)


def test_synth_samples_differ_between_seeds_and_splits() -> None:
    base = make_sample(0, seed=0, split="train", image_size=32, max_objects=3)[1]["png"]
    assert make_sample(0, seed=1, split="train", image_size=32, max_objects=3)[1]["png"] != base
    assert make_sample(0, seed=0, split="eval", image_size=32, max_objects=3)[1]["png"] != base


def test_mask_marks_exactly_the_pixels_a_shape_was_drawn_on() -> None:
    red_square = SceneObject("square", "red", "plain", "huge", (0.5, 0.5), 0.3, 0.0)
    rendered = render_scene(Scene("snow", (red_square,)), np.random.default_rng(0), 40)
    inside = rendered.mask == segmentation_class_id("square")
    # A half-side of 0.8 x radius 0.3 x 40 px = 9.6 px around the centre: columns/rows 10.4 .. 29.6.
    assert inside[20, 20] and not inside[2, 2]
    assert set(np.unique(rendered.mask)) == {segmentation_class_id("snow"), segmentation_class_id("square")}
    red = np.array([220, 30, 30])
    deviation = np.abs(rendered.image[inside].astype(int) - red)
    assert deviation.mean() < 5 and deviation.max() < 25  # plain red, up to the sensor noise (std 3.8)
    assert rendered.visible_pixels == (int(inside.sum()),)


def test_later_objects_occlude_earlier_ones_in_mask_and_visibility() -> None:
    below = SceneObject("circle", "blue", "plain", "huge", (0.5, 0.5), 0.3, 0.0)
    above = SceneObject("square", "red", "plain", "small", (0.5, 0.5), 0.12, 0.0)
    rendered = render_scene(Scene("sand", (below, above)), np.random.default_rng(0), 50)
    assert rendered.mask[25, 25] == segmentation_class_id("square")
    assert rendered.visible_pixels[0] == int((rendered.mask == segmentation_class_id("circle")).sum())
    assert rendered.dominant_object() == 0


def test_captions_and_labels_describe_the_drawn_scene(tmp_path: Path) -> None:
    generate_dataset(tmp_path, 20, image_size=48, seed=0)
    for sample in iter_samples(tmp_path):
        meta = sample.meta
        visible = [o for o in meta["objects"] if o["visible_pixels"] > 0]
        for obj in visible:
            assert obj["shape"] in meta["captions"]["keywords"].split(", ")
            assert f"{obj['size']} {obj['color']} {obj['shape']}" in meta["captions"]["sentence"]
            assert (
                f"{obj['texture']} {obj['color']} {obj['shape']} at the {obj['position']}" in meta["captions"]["dense"]
            )
        assert meta["background"] in BACKGROUNDS and meta["background"] in meta["captions"]["dense"]
        present = {SEGMENTATION_CLASSES[c] for c in np.unique(sample.mask)}
        assert present == set(meta["mask_classes"].values())
        assert {o["shape"] for o in visible} | {meta["background"]} == present
        if visible:
            assert meta["label"] == max(visible, key=lambda o: o["visible_pixels"])["shape"] and meta["label"] in SHAPES


def test_shard_samples_reads_the_same_samples_as_the_stream(tmp_path: Path) -> None:
    generate_dataset(tmp_path, 5, samples_per_shard=2, image_size=32, seed=0)
    samples = ShardSamples(tmp_path)
    streamed = list(iter_samples(tmp_path))
    assert len(samples) == 5
    for i in (4, 0, 2):  # random order
        assert samples[i].key == streamed[i].key
        assert np.array_equal(samples[i].image, streamed[i].image)
        assert np.array_equal(samples[i].mask, streamed[i].mask)


@pytest.mark.parametrize(("kwargs", "message"), [({"num_samples": 0}, "positive"), ({"split": "a-b"}, "split name")])
def test_synth_refuses_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"num_samples": 2, "image_size": 32} | kwargs
    with pytest.raises(ValueError, match=message):
        generate_dataset(tmp_path, **args)  # type: ignore[arg-type]
