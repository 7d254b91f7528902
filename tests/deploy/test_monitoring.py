"""Alert rules and dashboards, offline: promtool checks and unit-tests the rules, every dashboard query is valid
PromQL, and the committed dashboards are what the generator produces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.deploy.promql import ALERTS, dashboard_exprs, metric_names
from tests.deploy.tools import ROOT, run, tool

RULE_TESTS = ROOT / "tests" / "deploy" / "prometheus" / "tipsv2-alerts.test.yaml"
# Grafana's variables, replaced by what Grafana substitutes at query time.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def test_promtool_checks_the_alert_rules() -> None:
    result = run(tool("promtool"), "check", "rules", str(ALERTS))
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_rule_tests_pass() -> None:
    result = run(tool("promtool"), "test", "rules", str(RULE_TESTS))
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_a_promtool_test_case() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"] if "alert" in r}
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {a["alertname"] for case in cases for a in case.get("alert_rule_test", []) if a.get("exp_alerts")}
    assert alerts == fired, f"alerts never shown to fire in a test: {sorted(alerts - fired)}"


def test_every_alert_has_a_severity_summary_and_description() -> None:
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses expressions of recording rules: each panel query becomes one.
    rules = []
    for i, (where, query) in enumerate(dashboard_exprs()):
        expr = query
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"{where}: unknown Grafana variable in {query}"
        rules.append({"record": f"dashboard:query:{i}", "expr": expr})
    assert len(rules) > 20
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    run(tool("promtool"), "check", "rules", str(path))


def test_dashboards_plot_what_operators_ask_for() -> None:
    gateway = {n for where, e in dashboard_exprs() if where.startswith("TIPSv2 / Gateway") for n in metric_names(e)}
    triton = {n for where, e in dashboard_exprs() if where.startswith("TIPSv2 / Triton") for n in metric_names(e)}
    assert {
        "tipsv2_requests_total",
        "tipsv2_request_duration_seconds_bucket",
        "tipsv2_cache_hits_total",
        "tipsv2_adapter_activations_total",
        "tipsv2_adapter_loads_total",
        "tipsv2_rate_limited_total",
    } <= gateway
    assert {
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_exec_count",
        "nv_inference_pending_request_count",
        "nv_gpu_utilization",
    } <= triton
    quantiles = {e.split("(")[1].split(",")[0] for where, e in dashboard_exprs() if "Latency per endpoint" in where}
    assert quantiles == {"0.5", "0.95", "0.99"}


def test_committed_dashboards_match_their_generator() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "grafana" / "dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
