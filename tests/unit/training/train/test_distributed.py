"""torchrun with two gloo processes trains the same model as one process on the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from training.tipsv2.checkpoint import read_npz
from training.train.checkpointing import STATE_FILE
from training.train.config import TrainConfig
from training.train.loop import train

from .conftest import SMOKE

REPO = Path(__file__).resolve().parents[4]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_on_the_same_global_batch(
    smoke_config: Callable[..., TrainConfig], small_shards: Path, tokenizer_path: Path, tmp_path: Path
) -> None:
    overrides = ["optim.steps=3", "optim.batch_size=8", f"model.tokenizer={tokenizer_path}", "run.num_threads=1"]
    one = train(smoke_config(small_shards, *overrides, run_dir=tmp_path / "one"))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        "-m", "service.tools.cli.main", "train", "--config", str(SMOKE), *overrides,
        f"run.dir={tmp_path / 'two'}", f"data.train={small_shards}", "run.device=cpu",
    ]  # fmt: skip
    env = os.environ | {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    two = tmp_path / "two" / one.relative_to(tmp_path / "one")
    for name in ("tips_v2_oss_tiny_vision.npz", "tips_v2_oss_tiny_text.npz"):
        a, b = read_npz(one / name), read_npz(two / name)
        assert a.keys() == b.keys()
        worst = {k: float(np.abs(a[k] - b[k]).max()) for k in a}
        assert max(worst.values()) < 1e-5, sorted(worst.items(), key=lambda kv: -kv[1])[:5]  # seen: 8e-7
    states = [torch.load(run / STATE_FILE, weights_only=True) for run in (one, two)]
    for section in ("student", "teacher", "objective"):  # heads, temperature, EMA heads, teacher centres
        for key, value in states[0][section].items():
            assert torch.allclose(value.float(), states[1][section][key].float(), atol=1e-5), f"{section}.{key}"
