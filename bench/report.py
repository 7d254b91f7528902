"""What every scenario prints and writes: the machine and its load, a table, a JSON record under build/bench/, and a
PNG where a curve says more than a table (matplotlib, a dev dependency; without it the plot is skipped and the JSON
says so)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "build" / "bench"


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory_kib = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages: on a shared 2-core machine, the context of every figure."""
    return [round(x, 2) for x in os.getloadavg()]


class Record:
    """One scenario run: header, results appended as they come (with the load average at that moment), then
    written as JSON to `out/<scenario>.json` and printed."""

    def __init__(self, scenario: str, out: Path | None, argv: Sequence[str]) -> None:
        self.scenario = scenario
        self.out = out or DEFAULT_OUT
        self.data: dict[str, Any] = {
            "scenario": scenario,
            "command": f"python bench/{scenario}.py " + " ".join(argv),
            "machine": machine(),
            "load_average_start": load_average(),
            "results": [],
        }

    def add(self, result: dict[str, Any]) -> dict[str, Any]:
        result = {**result, "load_average_1m": load_average()[0]}
        self.data["results"].append(result)
        return result

    def results(self, **match: Any) -> list[dict[str, Any]]:
        return [r for r in self.data["results"] if all(r.get(k) == v for k, v in match.items())]

    def write(self) -> Path:
        self.data["load_average_end"] = load_average()
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"{self.scenario}.json"
        path.write_text(json.dumps(self.data, indent=2) + "\n")
        return path

    def plot_path(self, suffix: str = "") -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        return self.out / f"{self.scenario}{suffix}.png"


def table(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Fixed-width text table of `rows`; `columns` are (key, heading) pairs; floats with up to 2 decimals."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        return "" if value is None else str(value)

    cells = [[cell(r.get(key)) for key, _ in columns] for r in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, (_, h) in enumerate(columns)]
    lines = ["  ".join(h.rjust(w) for (_, h), w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'tipsv2-serve[dev]')", file=sys.stderr)
        return None
    return plt


def save(figure: Any, path: Path) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return str(path)


def arguments(doc: str | None) -> Any:
    """The flags every scenario takes; a scenario adds its own to the returned parser."""
    import argparse

    from bench.stack import DEFAULT_WORKDIR

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="model and repositories (kept)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON record and plots go here")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every cell's request count")
    return parser


def scaled(count: int, scale: float, floor: int = 4) -> int:
    return max(floor, int(count * scale))
