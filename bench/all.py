"""Every scenario of issue 9, one after the other (each starts and stops its own servers):

    python bench/all.py [--scale 1] [--only vs_naive,gateway_cost,batching,adapters,growth] [--out build/bench]

Each writes build/bench/<scenario>.json (and a PNG where it has a plot); docs/benchmarks.md records the results.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENARIOS = ("vs_naive", "gateway_cost", "batching", "adapters", "growth")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SCENARIOS))
    args, passed = parser.parse_known_args(argv)
    failed = []
    for name in args.only.split(","):
        started = time.monotonic()
        print(f"=== {name}", flush=True)
        code = importlib.import_module(f"bench.{name}").main(passed)
        print(f"=== {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
