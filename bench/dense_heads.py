"""What the DPT heads cost: milliseconds per image for each head at 224 and 448 px, TIPSv2 B/14, in-process.

Random weights of the real sizes (the cost does not depend on the values): the image tower with DINOv2's init, the
three decoders drawn at random. One image per call (batch 1, what `tipsv2 dense` runs). Each figure is the median
wall time and the median process CPU time (all threads; on a GPU, the host's) of repeated calls, the calls of all
figures interleaved round by round after warm-up, so that a shared machine's changing load spreads evenly:

  encoder            the embedding path (`trunk`): what an embedding request costs today
  encoder + layers   the same pass keeping the four DPT layers (`trunk_with_layers`): what a dense request adds
                     to the tower (three LayerNorms)
  <head>             one decoder on those layers, to maps at the input's size: segmentation = logits, upsampling
                     and argmax; depth = bins, expectation, upsampling; normals = normalise, bicubic, normalise
  <head> total       encoder + layers + that head

    flock /tmp/tipsv2-bench.lock python bench/dense_heads.py [--variant b14] [--device cpu|cuda]
        [--dtype float32|bfloat16] [--resolutions 224 448] [--seconds 3] [--out build/bench]

Prints a table; writes dense_heads.json (with the machine and its load average) into --out.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.report import Record, table  # noqa: E402
from training.tipsv2.dense import segmentation_labels  # noqa: E402
from training.tipsv2.dpt import DenseDecoder, create_decoder, unit_normals  # noqa: E402
from training.tipsv2.heads import TASKS  # noqa: E402
from training.tipsv2.model import create_model  # noqa: E402
from training.tipsv2.vision import LayerFeatures, VisionTransformer  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def timings(fns: dict[str, Callable[[], Any]], device: torch.device, seconds: float) -> dict[str, dict[str, float]]:
    """Median wall and CPU milliseconds of each call, measured in interleaved rounds (one call of each per round,
    after two warm-up calls each) until `seconds` per callable have passed, at least 3 rounds. Interleaving spreads
    the machine's changing load evenly over the figures; process CPU time (all threads) is what a call costs
    whatever else runs."""

    def timed(fn: Callable[[], Any]) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3

    for fn in fns.values():
        timed(fn)
        timed(fn)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    deadline = time.perf_counter() + seconds * len(fns)
    while min(len(v) for v in samples.values()) < 3 or time.perf_counter() < deadline:
        for name, fn in fns.items():
            samples[name].append(timed(fn))
    return {
        name: {
            "ms": statistics.median(w for w, _ in values),
            "cpu_ms": statistics.median(c for _, c in values),
            "runs": len(values),
        }
        for name, values in samples.items()
    }


def random_decoder(variant: str, task: str, device: torch.device, dtype: torch.dtype, seed: int) -> DenseDecoder:
    decoder = create_decoder(variant, task)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in decoder.parameters():
            fan_in = max(1, param[0].numel()) if param.ndim > 1 else 10
            param.copy_(torch.randn(param.shape, generator=generator) / fan_in**0.5)
    return decoder.to(device=device, dtype=dtype).eval()


def head_fn(
    task: str, decoder: DenseDecoder, features: list[LayerFeatures], size: tuple[int, int]
) -> Callable[[], Any]:
    """One head, to maps at `size`, as `predict_dense` computes it (without the copy back to the host)."""
    if task == "segmentation":
        return lambda: segmentation_labels(decoder.head_output(features), size)
    if task == "depth":
        return lambda: decoder(features, size)
    return lambda: unit_normals(decoder.head_output(features), size)


@torch.inference_mode()
def measure(
    vision: VisionTransformer,
    decoders: dict[str, DenseDecoder],
    resolution: int,
    device: torch.device,
    dtype: torch.dtype,
    seconds: float,
) -> list[dict[str, Any]]:
    pixels = torch.rand(1, 3, resolution, resolution, generator=torch.Generator().manual_seed(resolution))
    pixels = pixels.to(device=device, dtype=dtype)
    tokens = vision.embed(pixels)
    layers = vision.cfg.dpt_layers
    grid = resolution // vision.cfg.patch_size
    features = vision.layer_features(vision.trunk_with_layers(tokens, layers)[1], (grid, grid))
    fns: dict[str, Callable[[], Any]] = {
        "encoder (embedding path)": lambda: vision.trunk(vision.embed(pixels)),
        "encoder + DPT layers": lambda: vision.trunk_with_layers(vision.embed(pixels), layers),
    }
    for task, decoder in decoders.items():
        fns[f"{task} head"] = head_fn(task, decoder, features, (resolution, resolution))
    measured = timings(fns, device, seconds)
    rows = [{"resolution": resolution, "what": name, **m} for name, m in measured.items()]
    with_layers = measured["encoder + DPT layers"]
    for task in decoders:
        head = measured[f"{task} head"]
        total = {"ms": with_layers["ms"] + head["ms"], "cpu_ms": with_layers["cpu_ms"] + head["cpu_ms"]}
        rows.append({"resolution": resolution, "what": f"{task} total", **total})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="b14", help="b14 (the table in docs/benchmarks.md), l14, so14, g14, tiny")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtype", default="float32", choices=tuple(DTYPES))
    parser.add_argument("--resolutions", type=int, nargs="+", default=[224, 448])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per figure after warm-up")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    record = Record("dense_heads", args.out, sys.argv[1:] if argv is None else argv)
    record.data |= {"variant": args.variant, "device": args.device, "dtype": args.dtype}
    record.data["threads"] = torch.get_num_threads()
    if device.type == "cuda":
        record.data["gpu"] = torch.cuda.get_device_name(device)
    vision = create_model(args.variant, seed=0).visual.to(device=device, dtype=dtype).eval()
    decoders = {task: random_decoder(args.variant, task, device, dtype, seed) for seed, task in enumerate(TASKS)}
    for resolution in args.resolutions:
        for row in measure(vision, decoders, resolution, device, dtype, args.seconds):
            record.add(row)
            print(
                f"{row['resolution']} px  {row['what']:<26} {row['ms']:9.1f} ms  {row['cpu_ms']:9.1f} CPU ms",
                flush=True,
            )
    path = record.write()
    rows = record.data["results"]
    columns = [("resolution", "px"), ("what", "what"), ("ms", "ms / image"), ("cpu_ms", "CPU ms / image")]
    print(table(rows, [*columns, ("load_average_1m", "load 1m")]))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
