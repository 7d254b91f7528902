"""What the dashboards and alert rules query: their PromQL expressions and the metric names in them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "helm" / "tipsv2" / "files"
ALERTS = FILES / "prometheus" / "tipsv2-alerts.yaml"
DASHBOARDS = sorted((FILES / "dashboards").glob("*.json"))

# PromQL words that are not metric names: functions, aggregations, operators and modifiers we may use.
PROMQL_WORDS = {
    "abs", "absent", "avg", "bool", "by", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "count",
    "delta", "deriv", "floor", "group", "histogram_quantile", "idelta", "increase", "irate", "label_replace",
    "max", "min", "offset", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "quantile",
    "rate", "round", "scalar", "sort", "sort_desc", "stddev", "sum", "time", "topk", "bottomk", "vector",
    "without", "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "e", "inf", "nan",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b", re.IGNORECASE)
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label names, values, functions and durations removed)."""
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    return {word for word in _IDENT.findall(text) if word.lower() not in PROMQL_WORDS}


def alert_exprs() -> Iterator[tuple[str, str]]:
    """(alert name, expression) of every rule in the alert file."""
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule.get("alert") or rule["record"], rule["expr"]


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    """("dashboard / panel", expression) of every target of every dashboard panel."""
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                yield f"{dashboard['title']} / {panel['title']}", target["expr"]


def all_exprs() -> list[tuple[str, str]]:
    return [*alert_exprs(), *dashboard_exprs()]


def used_metric_names() -> dict[str, set[str]]:
    """Metric name -> where it is used."""
    used: dict[str, set[str]] = {}
    for where, expr in all_exprs():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(where)
    return used
