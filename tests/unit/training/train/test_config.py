"""Configs: defaults, then override files, then key=value; strict about unknown keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.train.config import DEFAULT_CONFIG, ConfigError, TrainConfig, load_config, parse_override, save_config

CONFIGS = DEFAULT_CONFIG.parent


def test_overrides_apply_in_order_files_then_key_values(tmp_path: Path) -> None:
    override = tmp_path / "exp.yaml"
    override.write_text("optim: {lr: 0.01, steps: 7}\nlosses:\n  ibot: {mode: masked}\n")
    raw = load_config([override], ["optim.lr=2e-4", "texts.cls2_sources=[alt]", "run.dir=r", "data.train=d"])
    cfg = TrainConfig.from_dict(raw)
    assert cfg.optim.lr == 2e-4 and cfg.optim.steps == 7
    assert cfg.losses.ibot["mode"] == "masked" and cfg.losses.ibot["weight"] == 1.0  # siblings kept
    assert cfg.texts.cls2_sources == ("alt",)
    assert yaml.safe_load(save_config(raw, tmp_path).read_text()) == raw


def test_unknown_keys_fail_with_the_known_ones_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'optim.learning_rate'.*lr"):
        load_config(overrides=["optim.learning_rate=1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("teacher: {ema_mode: full}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_config([bad])
    with pytest.raises(ConfigError, match="is a section"):
        load_config(overrides=["optim=3"])
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        parse_override("optim.lr")


RECIPE_CONFIGS = sorted(
    p.relative_to(CONFIGS).as_posix() for p in [*CONFIGS.glob("*.yaml"), *CONFIGS.glob("arms/*.yaml")]
)  # (configs/tasks/ holds AdaLink task files, another schema)


@pytest.mark.parametrize("name", RECIPE_CONFIGS)
def test_every_shipped_config_merges_onto_the_defaults(name: str) -> None:
    raw = load_config([CONFIGS / name], ["run.dir=r", "data.train=d", "losses.patch_distill.teacher=t"])
    TrainConfig.from_dict(raw)


def test_required_settings_are_named() -> None:
    with pytest.raises(ConfigError, match=r"run\.dir is required"):
        TrainConfig.from_dict(load_config())
    with pytest.raises(ConfigError, match=r"patch_distill\.teacher is required"):
        TrainConfig.from_dict(load_config(overrides=["run.dir=r", "data.train=d", "losses.patch_distill.weight=1"]))
