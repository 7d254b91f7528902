"""`tipsv2 eval` scores official-layout weights on generated shards with the model library's zero-shot functions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from service.tools.cli.main import main as cli
from training.data.synth import generate_dataset
from training.eval.zeroshot_eval import recall_at_1


def test_recall_at_1_counts_identical_texts_as_hits() -> None:
    similarity = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.2, 0.1], [0.0, 0.1, 0.7]])
    # image 1 retrieves text 0: a miss unless texts 0 and 1 are the same string
    assert recall_at_1(similarity, ["a", "b", "c"]) == pytest.approx((2 / 3, 1.0))  # every text finds its image
    assert recall_at_1(similarity, ["a", "a", "c"]) == pytest.approx((1.0, 1.0))


@pytest.fixture(scope="module")
def eval_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("eval_shards")
    generate_dataset(directory, 12, samples_per_shard=6, image_size=56, seed=0, split="eval")
    return directory


def test_eval_cli_reports_segmentation_classification_and_retrieval(
    tiny_weights: Path, eval_shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "metrics.json"
    args = ["eval", "--weights", str(tiny_weights), "--variant", "tiny", "--data", str(eval_shards)]
    assert cli([*args, "--mode", "slide", "--limit", "10", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    metrics = result["metrics"]
    assert metrics["num_images"] == 10 and metrics["resolution"] == 56
    for key in ("segmentation_miou", "classification_top1_cls1", "retrieval_i2t_r1_cls2", "retrieval_t2i_r1_cls1"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert set(result["per_class_iou"]) <= set(
        json.loads((eval_shards / "manifest.json").read_text())["segmentation_classes"]
    )
    assert json.loads(capsys.readouterr().out) == result


def test_eval_cli_needs_the_tokenizer_next_to_the_weights(
    tiny_weights: Path, eval_shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights, weights)
    (weights / "tokenizer.model").unlink()
    assert cli(["eval", "--weights", str(weights), "--variant", "tiny", "--data", str(eval_shards)]) == 2
    assert "tokenizer.model not found" in capsys.readouterr().err
