"""Start-up output of `tipsv2 local up`: one line per step, a live bar for the steps that take seconds, and the
libraries' own chatter (onnxscript's and onnx_ir's INFO lines, torch.onnx's warnings) kept out of the terminal."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator

from tqdm import tqdm

# Loggers that print hundreds of INFO lines per ONNX export (constant folding, initializer deduplication, ...),
# and the export's own parity lines (a failed parity check still raises).
CHATTY = ("onnx_ir", "onnxscript", "torch.onnx", "torch.export", "torch._dynamo", "training.export")


def quiet_libraries(level: int = logging.ERROR) -> None:
    for name in CHATTY:
        logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def step(title: str, progress: Callable[[], tuple[int, int]] | None = None) -> Iterator[None]:
    """`title ... done in 1.2 s` on one line. With `progress` (done, total), a bar that a thread refreshes twice a
    second until the step ends; without it, just the elapsed time. Failures end the line with `failed`."""
    started = time.monotonic()
    bar = tqdm(
        desc=title,
        total=None,
        file=sys.stderr,
        leave=False,
        bar_format="{desc}: {elapsed}" if progress is None else "{desc}: {n}/{total} {bar:20} {elapsed}",
        disable=not sys.stderr.isatty(),
    )
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(0.5):
            if progress is not None:
                done, total = progress()
                bar.total, bar.n = total, done
            bar.refresh()

    ticker = threading.Thread(target=refresh, daemon=True)
    ticker.start()
    outcome = "failed"
    try:
        yield
        outcome = f"done in {time.monotonic() - started:.1f} s"
    finally:
        stop.set()
        ticker.join()
        bar.close()
        print(f"{title}: {outcome}", flush=True)
