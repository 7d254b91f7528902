"""Every dashboard is one Grafana accepts: it type-checks against Grafana's own schema (`@grafana/schema` of the
Grafana release compose runs), panel options included; and the check does reject a broken dashboard."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.grafana_schema import GRAFANA_SCHEMA_LOCK, check_dashboards
from tests.deploy.promql import DASHBOARDS
from tests.deploy.tools import ROOT


def committed() -> dict[str, dict[str, Any]]:
    return {path.stem.replace("-", "_"): json.loads(path.read_text()) for path in DASHBOARDS}


def test_every_dashboard_matches_grafanas_schema(tmp_path: Path) -> None:
    dashboards = committed()
    assert {"tipsv2_gateway", "tipsv2_triton"} <= set(dashboards)
    result = check_dashboards(dashboards, tmp_path)
    assert result.returncode == 0, f"dashboards Grafana's schema rejects:\n{result.stdout}{result.stderr}"


def test_the_schema_check_rejects_what_grafana_would(tmp_path: Path) -> None:
    # Each defect must fail on its own (one module each, one tsc run): the datasource variable's empty `current`
    # (what every dashboard had), a stat panel given a timeseries-only option, an unknown legend mode, a panel of a
    # plugin the check does not type.
    gateway = committed()["tipsv2_gateway"]
    stat = next(i for i, p in enumerate(gateway["panels"]) if p["type"] == "stat")
    timeseries = next(i for i, p in enumerate(gateway["panels"]) if p["type"] == "timeseries")
    broken = {name: copy.deepcopy(gateway) for name in ("current", "stat_tooltip", "legend_mode", "untyped_plugin")}
    broken["current"]["templating"]["list"][0]["current"] = {}
    broken["stat_tooltip"]["panels"][stat]["options"]["tooltip"] = {"mode": "multi", "sort": "none"}
    broken["legend_mode"]["panels"][timeseries]["options"]["legend"]["displayMode"] = "sideways"
    broken["untyped_plugin"]["panels"][timeseries]["type"] = "graph"
    result = check_dashboards(broken, tmp_path)
    assert result.returncode != 0
    accepted = [name for name in broken if f"{name}.ts(" not in result.stdout]
    assert not accepted, f"the schema check accepted these defects: {accepted}\n{result.stdout}"


def test_schema_types_are_those_of_the_grafana_compose_runs() -> None:
    lock = json.loads(GRAFANA_SCHEMA_LOCK.read_text())
    schema_version = lock["packages"]["node_modules/@grafana/schema"]["version"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    image = compose["services"]["grafana"]["image"]
    assert image.rsplit(":", 1)[1] == schema_version, f"{image} vs @grafana/schema {schema_version}"
