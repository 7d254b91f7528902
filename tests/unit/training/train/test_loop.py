"""The training loop: learns, resumes bit for bit, and writes checkpoints that load and serve as official ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from service.tools.cli.main import main as cli
from training.tipsv2.checkpoint import load_pretrained, read_npz
from training.train.checkpointing import STATE_FILE, checkpoint_dir, list_checkpoints
from training.train.config import TrainConfig
from training.train.loop import train
from training.train.metrics import read_metrics


def test_twenty_steps_on_generated_shards_lower_the_total_loss(
    smoke_config: Callable[..., TrainConfig], tiny_shards: Path
) -> None:
    cfg = smoke_config(tiny_shards)
    final = train(cfg)
    metrics = read_metrics(cfg.run.dir)  # type: ignore[arg-type]
    assert [m["step"] for m in metrics] == list(range(1, 21))
    first, last = metrics[0], metrics[-1]
    terms = {"contrastive_cls1_loss", "contrastive_cls2_loss", "dino_loss", "ibot_loss", "koleo_loss"}
    assert terms <= set(first)
    assert all(np.isfinite(m["loss"]) for m in metrics)
    assert last["loss"] < 0.85 * first["loss"]
    # the image-text objective is a fixed target (no moving teacher): it must fall by itself
    assert (
        last["contrastive_cls1_loss"] + last["contrastive_cls2_loss"]
        < first["contrastive_cls1_loss"] + first["contrastive_cls2_loss"] - 0.5
    )
    assert final == checkpoint_dir(cfg.run.dir, 20) and (final / STATE_FILE).is_file()  # type: ignore[arg-type]
    saved = (Path(cfg.run.dir) / "config.yaml").read_text()  # type: ignore[arg-type]
    assert "batch_size: 8" in saved and str(tiny_shards) in saved


def state_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint folder: the official arrays and the training state, flattened by key path."""
    flat: dict[str, torch.Tensor] = {}
    for npz in sorted(path.glob("*.npz")):
        flat |= {f"{npz.name}/{k}": torch.from_numpy(v) for k, v in read_npz(npz).items()}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, torch.Tensor):
            flat[prefix] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}/{k}", v)
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(f"{prefix}/{i}", v)

    state = torch.load(path / STATE_FILE, weights_only=True)
    for section in ("student", "teacher", "objective", "optimizer"):
        walk(section, state[section])
    return flat


def test_resume_continues_bit_for_bit_on_cpu(
    smoke_config: Callable[..., TrainConfig], small_shards: Path, tmp_path: Path
) -> None:
    cfg = smoke_config(small_shards, "optim.steps=6", "run.checkpoint_every=3", "run.keep_checkpoints=0")
    run_dir = Path(cfg.run.dir)  # type: ignore[arg-type]
    train(cfg)  # uninterrupted: checkpoints after steps 3 and 6
    uninterrupted = state_tensors(checkpoint_dir(run_dir, 6))
    first_pass = read_metrics(run_dir)
    # "crash" after step 3: drop the later checkpoint, then run the same command again
    for path in list_checkpoints(run_dir)[1:]:
        for file in path.iterdir():
            file.unlink()
        path.rmdir()
    train(cfg)
    resumed = state_tensors(checkpoint_dir(run_dir, 6))
    assert uninterrupted.keys() == resumed.keys() and len(resumed) > 50
    different = [k for k in resumed if not torch.equal(uninterrupted[k], resumed[k])]
    assert different == []
    second_pass = read_metrics(run_dir)[len(first_pass) :]
    assert [m["step"] for m in second_pass] == [4, 5, 6]
    assert [m["loss"] for m in second_pass] == [m["loss"] for m in first_pass[3:]]


def test_training_checkpoint_loads_as_an_official_checkpoint_and_encodes(
    smoke_config: Callable[..., TrainConfig], tiny_shards: Path, tmp_path: Path
) -> None:
    cfg = smoke_config(tiny_shards, "optim.steps=2")
    final = train(cfg)
    model = load_pretrained(final, "tipsv2-tiny")  # strict official-layout loading
    state = torch.load(final / STATE_FILE, weights_only=True)
    learned = float(state["student"]["log_temperature"].exp())
    assert float(model.temperature) == np.float32(learned)
    image = tmp_path / "shape.png"
    from PIL import Image

    Image.fromarray(np.full((56, 56, 3), 200, np.uint8)).save(image)
    out = tmp_path / "encoded.npz"
    args = ["encode", "--weights", str(final), "--variant", "tiny", "--image", str(image)]
    assert cli([*args, "--text", "a red circle", "--resolution", "56", "--output", str(out)]) == 0
    arrays = dict(np.load(out))
    assert arrays["image_cls"].shape == (1, 64) and arrays["image_patch_tokens"].shape == (1, 4, 4, 64)
    with torch.no_grad():
        expected = model.encode_image(torch.full((1, 3, 56, 56), 200 / 255.0)).cls1
    assert np.allclose(arrays["image_cls"], expected.numpy(), atol=1e-5)


def test_train_cli_prints_the_merged_config_and_refuses_unknown_keys(capsys: object, tmp_path: Path) -> None:
    assert cli(["train", "--print-config", "optim.lr=0.01", "run.dir=x"]) == 0
    printed = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "lr: 0.01" in printed and "dir: x" in printed
    assert cli(["train", "optim.learning_rate=0.01"]) == 2
    assert "unknown config key 'optim.learning_rate'" in capsys.readouterr().err  # type: ignore[attr-defined]
    assert cli(["train", "run.dir=" + str(tmp_path)]) == 2
    assert "data.train is required" in capsys.readouterr().err  # type: ignore[attr-defined]


def test_autocast_is_bf16_on_cuda_only() -> None:
    import contextlib
    import warnings

    from training.train.loop import autocast

    assert isinstance(autocast(torch.device("cpu"), "bf16"), contextlib.nullcontext)
    assert isinstance(autocast(torch.device("cuda", 0), "fp32"), contextlib.nullcontext)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constructing a CUDA autocast on a CPU-only build warns
        context = autocast(torch.device("cuda", 0), "bf16")
    assert isinstance(context, torch.autocast) and context.fast_dtype == torch.bfloat16
