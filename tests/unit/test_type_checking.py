"""`make test` type-checks the gateway and the model library it imports with one strictness (issue 15, defect 11).

The gateway imports its image decoder and adapter validator from `training/`, so an untyped or loosely checked
`training/` is a hole in the gateway's own checks. The mypy run itself is `make typecheck`; this test holds the
configuration that makes it cover `training/` and keeps anyone from relaxing it there again.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _mypy_config() -> dict:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"])


def test_mypy_checks_service_and_training_strictly() -> None:
    config = _mypy_config()
    assert set(config["packages"]) >= {"service", "training"}
    assert config["strict"] is True


def test_no_override_relaxes_training() -> None:
    for override in _mypy_config().get("overrides", []):
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        relaxed = {key for key in override if key != "module"}
        assert not any(m.startswith("training") for m in modules), (modules, relaxed)
