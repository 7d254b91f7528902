"""The scenarios' JSON records as Markdown tables, for docs/benchmarks.md:

    python bench/markdown.py [build/bench]

Prints one section per record found, with its command, machine, date and load averages, so that a table never
travels without its context.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import adapters, batching, gateway_cost, growth, vs_naive  # noqa: E402
from bench.report import DEFAULT_OUT  # noqa: E402

Columns = list[tuple[str, str]]


def markdown(rows: list[dict[str, Any]], columns: Columns) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join(lines)


def context(record: dict[str, Any]) -> str:
    machine = record["machine"]
    return (
        f"`{record['command'].strip()}` on {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB, "
        f"Python {machine['python']}; {machine['date']}; load average (1, 5, 15 min) "
        f"{record['load_average_start']} at the start, {record.get('load_average_end')} at the end."
    )


def tables(record: dict[str, Any]) -> list[str]:
    scenario = record["scenario"]
    if scenario == "vs_naive":
        return [markdown(record["comparison"], vs_naive.COLUMNS)]
    if scenario == "gateway_cost":
        return [markdown(record["summary"], gateway_cost.COLUMNS)]
    if scenario == "batching":
        return [markdown(record["summary"], batching.COLUMNS)]
    if scenario == "adapters":
        out = []
        if "mix" in record:
            out.append(markdown(record["mix"], adapters.MIX_COLUMNS))
        if "cold" in record:
            out.append(markdown(record["cold"], adapters.COLD_COLUMNS))
        registered = [r for r in record["results"] if r.get("part") == "registered"]
        if registered:
            out.append(markdown(registered, adapters.REGISTERED_COLUMNS))
        return out
    if scenario == "growth":
        out = [markdown(record["table"], growth.COLUMNS)]
        if "memory" in record:
            memory = record["memory"]
            columns = [
                ("cycles", "cycles"),
                ("gateway", "gateway MiB"),
                ("triton", "triton MiB"),
                ("redis", "redis MiB"),
            ]
            out.append(markdown(memory["samples"], columns))
            out.append(
                f"growth: {memory['growth_percent']} %, {memory['growth_mib']} MiB; bank: {memory['bank_loads']}"
            )
        return out
    return []


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else DEFAULT_OUT
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        if "scenario" not in record:
            continue
        print(f"### {record['scenario']}\n\n{context(record)}\n")
        for block in tables(record):
            print(block + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
