"""The survey domain-shift task: the world's scenes in false colour, land cover in new words, the shard format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.dataset import ShardSamples
from training.data.domain_shift import (
    CLASSIFICATION_CLASSES,
    COVER_NAMES,
    SEGMENTATION_CLASSES,
    false_colour,
    generate_survey_dataset,
    make_survey_sample,
)
from training.data.synth import decode_sample, make_sample
from training.data.vocabulary import BACKGROUNDS, SHAPES, caption_corpus
from training.data.vocabulary import SEGMENTATION_CLASSES as WORLD_CLASSES


def sample(index: int, seed: int = 0, split: str = "train"):  # type: ignore[no-untyped-def]
    return decode_sample(*make_survey_sample(index, seed=seed, split=split, image_size=56, max_objects=3))


def test_cover_names_are_new_words_one_per_world_background() -> None:
    corpus_words = {word.strip(".,") for sentence in caption_corpus(n=2000) for word in sentence.split()}
    assert list(COVER_NAMES) == BACKGROUNDS and len(set(CLASSIFICATION_CLASSES)) == len(BACKGROUNDS)
    assert not set(CLASSIFICATION_CLASSES) & corpus_words
    assert len(SEGMENTATION_CLASSES) == len(WORLD_CLASSES) and SEGMENTATION_CLASSES[len(BACKGROUNDS) :] == tuple(SHAPES)


def test_false_colour_reorders_and_inverts_the_bands() -> None:
    pixel = np.array([[[10, 20, 30]]], dtype=np.uint8)
    assert false_colour(pixel).tolist() == [[[235, 225, 245]]]


def test_samples_are_deterministic_and_never_the_worlds() -> None:
    first = make_survey_sample(3, seed=0, split="train", image_size=56, max_objects=3)
    assert first == make_survey_sample(3, seed=0, split="train", image_size=56, max_objects=3)
    assert sample(3).image.tobytes() != sample(3, seed=1).image.tobytes()
    world = decode_sample(*make_sample(3, seed=0, split="train", image_size=56, max_objects=3))
    assert sample(3).meta["objects"] != world.meta["objects"]


def test_label_is_the_renamed_land_cover_and_texts_use_only_the_new_words() -> None:
    for index in range(20):
        meta = sample(index, split="eval").meta
        assert meta["label"] == COVER_NAMES[meta["world_background"]] == meta["background"]
        assert meta["label"] in meta["mask_classes"].values()
        texts = [meta["alt"], *meta["captions"].values()]
        assert all(world not in text.split() for text in texts for world in BACKGROUNDS)
        assert meta["label"] in meta["captions"]["sentence"]


def test_mask_ids_are_the_worlds_under_the_new_class_list() -> None:
    survey = sample(5)
    for class_id, name in survey.meta["mask_classes"].items():
        world_name = WORLD_CLASSES[int(class_id)]
        assert name == COVER_NAMES.get(world_name, world_name)
    assert set(np.unique(survey.mask).tolist()) == {int(c) for c in survey.meta["mask_classes"]}


def test_dataset_reads_back_through_the_training_readers(tmp_path: Path) -> None:
    manifest = generate_survey_dataset(tmp_path, 5, samples_per_shard=2, image_size=56, split="train")
    assert manifest["world"] == "survey" and manifest["classification_classes"] == list(CLASSIFICATION_CLASSES)
    samples = ShardSamples(tmp_path)
    assert len(samples) == 5 and samples.classification_classes == list(CLASSIFICATION_CLASSES)
    assert samples[4].image.shape == (56, 56, 3) and samples[4].key == "train-00000004"


def test_data_synth_cli_writes_the_survey_only_when_asked(tmp_path: Path) -> None:
    from service.tools.cli.main import main
    from training.data.shards import read_manifest
    from training.data.vocabulary import SHAPES as WORLD_LABELS

    common = ["--num-samples", "2", "--image-size", "28"]
    assert main(["data", "synth", "--out", str(tmp_path / "w"), *common]) == 0
    assert main(["data", "synth", "--world", "survey", "--out", str(tmp_path / "s"), *common]) == 0
    world, survey = read_manifest(tmp_path / "w"), read_manifest(tmp_path / "s")
    assert "world" not in world and world["classification_classes"] == list(WORLD_LABELS)
    assert survey["world"] == "survey" and survey["classification_classes"] == list(CLASSIFICATION_CLASSES)
