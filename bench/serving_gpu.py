"""One GPU, one TIPSv2 B/14 (seeded random weights), 64 tenants' rank-16 adapters mixed in every batch: the served
path against the same code called directly, in one run that fits one 10-minute device call from a cold start.

Phases, most important first (each skipped, and listed, when the time budget would not hold it):
  direct        frozen: the direct path of 2026-12-04 (bench/frozen_direct.py), issue 13's baseline, at the served
                max batch; fused: `FusedForward` (the code the server runs) in-process, same batch, base and 64
                adapters: host arrays in, host tensors out
  triton        the real tritonserver (nvidia-pytriton's, carried as docs/benchmarks.md says) serving the fused
                `local` repository (runtime torch on cuda, bf16, 3 instances, eager) under dynamic batching, gRPC
                load from separate processes: texts (64 rows per request) and images (8 rows) at c=16 and c=64,
                and images one row per request at c=64
  served batch  `FusedForward` again, at the average batch Triton formed in the best cell of each modality
  max batch 1   the same repository with max batch 1: images one row per request at c=64 (what batching buys)
  compiled      the trunk compiled (torch.compile, bucketed batch sizes; `reduce-overhead` adds CUDA graphs), direct
                and through Triton at c=64, with the models' own report (tipsv2_trunk_compiled) of how they ran
Triton cells are timed windows that count only requests started and finished inside them; each records Triton's
per-model statistics over the window (rows per execution; queue, compute input/infer/output per request) and GPU
utilisation samples. Prints a table; writes serving_gpu.json into --out after every phase, so that a run cut short
still leaves what it measured; the `summary` says what the issue's targets came to (bench/gpu_summary.py).

On the H200 machine (device tool, carrying .whl/ from bench/gpu_carry.sh): bash bench/gpu_run.sh
CPU smoke test of every code path (tiny model, CPU torch, short windows): python bench/serving_gpu.py --dry-run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, kw_only=True)
class Setup:
    variant: str
    device: str
    dtype: str
    text_batch: int  # the served max batch, and the direct batch
    text_rows: int  # rows per gRPC request
    image_batch: int
    image_rows: int
    resolution: int
    tenants: int
    rank: int
    seconds: float  # per direct measurement
    window_s: float  # per Triton cell
    margin_s: float  # load processes' start-up and warm-up before a window
    concurrency: tuple[int, ...]
    processes: int  # load-generator processes per Triton cell
    instances: int  # of each fused model
    threads: int  # torch threads per model instance
    compile_mode: str
    compile_backend: str
    buckets: tuple[int, ...]  # compiled batch sizes below the max batch (which is always one)
    compile: bool


FULL = Setup(
    variant="tipsv2-b14",
    device="cuda",
    dtype="bfloat16",
    text_batch=256,
    text_rows=64,
    image_batch=128,
    image_rows=8,
    resolution=224,
    tenants=64,
    rank=16,
    seconds=4.0,
    window_s=8.0,
    margin_s=6.0,
    concurrency=(16, 64),
    processes=8,
    instances=3,
    threads=2,
    compile_mode="reduce-overhead",
    compile_backend="inductor",
    buckets=(64,),
    compile=True,
)
DRY = Setup(
    variant="tipsv2-tiny",
    device="cpu",
    dtype="float32",
    text_batch=16,
    text_rows=4,
    image_batch=4,
    image_rows=2,
    resolution=112,
    tenants=8,
    rank=4,
    seconds=0.3,
    window_s=1.0,
    margin_s=2.5,
    concurrency=(4,),
    processes=2,
    instances=1,
    threads=1,
    compile_mode="default",
    compile_backend="eager",
    buckets=(2,),
    compile=True,
)


class Report:
    """Results so far, rewritten to disk after every phase."""

    def __init__(self, out: Path | None, header: dict[str, Any]) -> None:
        self.path = out / "serving_gpu.json" if out else None
        self.data: dict[str, Any] = {**header, "direct": [], "triton": [], "skipped": [], "errors": []}

    def add(self, section: str, item: Any) -> None:
        self.data[section].append(item)
        self.save()

    def save(self) -> None:
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, indent=2))


def environment(site: Path | None) -> dict[str, Any]:
    import numpy
    import torch

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.cuda.is_available(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    for module in ("safetensors", "sentencepiece", "tritonclient.grpc", "google.protobuf"):
        try:
            __import__(module)
            info[module] = "ok"
        except Exception as exc:  # reported, so that a missing package on the GPU machine is obvious
            info[module] = f"missing: {exc}"
    info["site"] = str(site) if site else ""
    return info


def write_adapters(store: Path, model_id: str, dim: int, count: int, rank: int) -> list[str]:
    from training.adalink.samples import store_random_adapters

    return store_random_adapters(
        store, model_id, dim, count=count, rank=rank, up_scale=0.05, tenant="bench", prefix="t"
    )


def timed(step: Callable[[], Any], seconds: float, sync: Callable[[], None]) -> float:
    """Steps per second of `step`, run for about `seconds` after a warm-up."""
    for _ in range(3):
        step()
    sync()
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        steps += 1
    sync()
    return steps / (time.perf_counter() - started)


class GpuSampler:
    """GPU utilisation and memory from `nvidia-smi`, every 0.25 s while a cell runs (nothing where there is none)."""

    QUERY = ("nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "--id=0")

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []  # (wall time, util %, memory MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            try:
                out = subprocess.run(self.QUERY, capture_output=True, text=True, timeout=2, check=True).stdout
                util, memory = (float(v) for v in out.strip().splitlines()[0].split(","))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                return  # no nvidia-smi (the CPU dry run), or one it cannot read: no samples
            self.samples.append((time.time(), util, memory))

    def summary(self, window: list[float]) -> dict[str, Any]:
        inside = [(u, m) for t, u, m in self.samples if window[0] <= t <= window[1]]
        if not inside:
            return {"samples": 0}
        utils = [u for u, _ in inside]
        return {
            "samples": len(inside),
            "util_mean": round(sum(utils) / len(utils), 1),
            "util_min": min(utils),
            "util_max": max(utils),
            "memory_mib_max": max(m for _, m in inside),
            "util_series": utils[:120],
        }


def trunk_compiled(metrics_port: int) -> dict[str, float]:
    """Each fused model's own report of how its trunk runs (1 compiled, 0 eager), from Triton's metrics port."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("tipsv2_trunk_compiled{"):
            model = line.split('model="', 1)[1].split('"', 1)[0]
            found[model] = min(found.get(model, 1.0), float(line.rsplit(" ", 1)[1]))
    return found


@dataclass
class Bench:
    """One run: the model, its repositories and adapters in `work`, and where the results go."""

    setup: Setup
    args: argparse.Namespace
    work: Path
    report: Report

    # -- preparation -------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        from training.tipsv2.model import create_model

        self.model = create_model(self.setup.variant, seed=0).eval()
        self.model_id = f"bench-{self.setup.variant}-seed0"
        self.store = self.work / "adapters"
        self.adapters = write_adapters(
            self.store, self.model_id, self.model.cfg.embed_dim, self.setup.tenants, self.setup.rank
        )
        self.repo = self.export("fused")
        parts = (str(self.args.site or ""), str(ROOT))
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in parts if p)}
        self.served_batch: dict[str, float] = {}

    def options(self, **overrides: Any) -> Any:
        from service.triton.repository import RepositoryOptions

        s = self.setup
        options = RepositoryOptions(
            runtime="torch",
            device=s.device,  # type: ignore[arg-type]
            compute_dtype=s.dtype,  # type: ignore[arg-type]
            text_max_batch=s.text_batch,
            image_max_batch=s.image_batch,
            max_queue_delay_us=2000,
            fused_instances=s.instances,
            intra_op_threads=s.threads,
            adapter_store=str(self.store),
            adapter_capacity=128,
        )
        return replace(options, **overrides)

    def export(self, name: str, **overrides: Any) -> Path:
        from service.triton.build import build_model_repository

        options = self.options(**overrides)
        out = self.work / name
        return build_model_repository(self.model, self.model_id, out, options, (self.setup.resolution,))

    # -- direct ------------------------------------------------------------------------------------------------

    def host_batch(self, modality: str, batch: int) -> Any:
        import numpy as np

        rng = np.random.default_rng(0)
        if modality == "text":
            ids = np.zeros((batch, self.model.cfg.text_cfg.max_len), np.int32)
            ids[:, :48] = rng.integers(2, 900, (batch, 48))
            return ids
        return rng.integers(0, 256, (batch, self.setup.resolution, self.setup.resolution, 3), dtype=np.uint8)

    def fused(self, modality: str, **compile_args: Any) -> Any:
        from service.triton.models.tipsv2_fused_torch import FusedForward

        folder = str(self.repo / f"tipsv2_{modality}" / "1")
        return FusedForward.load(
            modality, folder, self.setup.device, self.setup.dtype, str(self.store), self.model_id, 128, **compile_args
        )

    def measure_fused(self, fused: Any, modality: str, batch: int, label: str, at: str, path: str) -> None:
        import torch

        from service.triton.models.tipsv2_fused_torch import Item

        host = self.host_batch(modality, batch)
        wanted = ("text_embedding",) if modality == "text" else ("cls1",)
        for adapters, ids in self.adapter_mixes(batch):
            if label == "mixed only" and adapters == "base":
                continue
            item = Item(torch.from_numpy(host), ids, wanted)
            rate = timed(lambda item=item: fused.run([item]), self.setup.seconds, self.sync)  # type: ignore[misc]
            self.add_direct(path, modality, adapters, batch, at, rate)

    def adapter_mixes(self, batch: int) -> list[tuple[str, list[str]]]:
        mixed = [self.adapters[i % len(self.adapters)] for i in range(batch)]
        return [("base", [""] * batch), (f"{self.setup.tenants} adapters", mixed)]

    def add_direct(self, path: str, modality: str, adapters: str, batch: int, at: str, rate: float) -> None:
        row = {"path": path, "modality": modality, "adapters": adapters, "batch": batch, "at": at}
        self.report.add("direct", {**row, "items_per_s": round(rate * batch, 1)})

    def sync(self) -> None:
        import torch

        if self.setup.device == "cuda":
            torch.cuda.synchronize()

    def free(self) -> None:
        import gc

        import torch

        gc.collect()
        if self.setup.device == "cuda":
            torch.cuda.empty_cache()

    def direct(self) -> None:
        for modality in ("text", "image"):
            batch = self.setup.text_batch if modality == "text" else self.setup.image_batch
            self.measure_frozen(modality, batch)
            self.measure_fused(self.fused(modality), modality, batch, "all", "max", "direct fused")
            self.free()

    def measure_frozen(self, modality: str, batch: int) -> None:
        from bench.frozen_direct import FrozenImageStage, FrozenTextStage, frozen_step
        from service.triton.models.tipsv2_stages_torch import DeviceAdapterBank
        from training.export.torch_trunk import DTYPES, load_torch_trunk

        folder = self.repo / f"tipsv2_{modality}" / "1"
        device, dtype = self.setup.device, DTYPES[self.setup.dtype]
        tower = load_torch_trunk(folder, device, self.setup.dtype).tower
        stage = (FrozenTextStage if modality == "text" else FrozenImageStage)(str(folder / "embed.safetensors"), device)
        bank = DeviceAdapterBank(str(self.store), modality, self.model.cfg.embed_dim, self.model_id, 128, device)
        label, ids = self.adapter_mixes(batch)[1]
        step = frozen_step(modality, self.host_batch(modality, batch), ids, stage, bank, tower, dtype)
        self.add_direct("direct frozen", modality, label, batch, "max", timed(step, self.setup.seconds, self.sync))

    def direct_at_served_batch(self) -> None:
        for modality, batch in self.served_batch.items():
            self.measure_fused(
                self.fused(modality), modality, max(1, round(batch)), "mixed only", "served", "direct fused"
            )
            self.free()

    # -- triton ------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def server(self, repo: Path) -> Iterator[Any]:
        import numpy

        from service.tools.local.redis_server import free_port
        from service.tools.local.tritonserver import TritonServer

        if int(numpy.__version__.split(".")[0]) >= 2 and self.args.stub_env is None:
            raise RuntimeError(
                "numpy 2 here and no --stub-env: the Python backend's stub would corrupt the adapter ids "
                "(BYTES inputs) and die; give it a folder with numpy 1 (docs/benchmarks.md)"
            )
        server = TritonServer(
            repo, self.work / f"triton-{repo.name}", free_port(), free_port(), free_port(), cwd=self.args.stub_env
        )
        started = time.monotonic()
        server.start(timeout=420)
        self.report.data.setdefault("server_start_s", {})[repo.name] = round(time.monotonic() - started, 1)
        try:
            yield server
        finally:
            server.stop()

    def cell(self, modality: str, concurrency: int, rows: int) -> Any:
        from bench.loadgen import Cell

        return Cell(
            f"{modality} x{rows} c={concurrency}",
            modality,
            concurrency,
            requests=0,
            rows=rows,
            adapters=tuple(self.adapters),
            resolution=self.setup.resolution,
            text_len=self.model.cfg.text_cfg.max_len,
            warmup=max(8, len(self.adapters) // rows + 2),
            window_s=self.setup.window_s,
        )

    def run_cells(self, server: Any, cells: list[Any], path: str) -> list[dict[str, Any]]:
        from bench.loadgen import drive

        results = []
        for cell in cells:
            with GpuSampler() as sampler:
                (result,) = drive(
                    f"127.0.0.1:{server.grpc_port}",
                    [cell],
                    env=self.env,
                    processes=min(self.setup.processes, cell.concurrency),
                    margin_s=self.setup.margin_s,
                )
            result = {"path": path, **result, "gpu": sampler.summary(result["window"])}
            self.report.add("triton", result)
            results.append(result)
        return results

    def triton(self) -> None:
        s = self.setup
        cells = [
            self.cell(m, c, s.text_rows if m == "text" else s.image_rows)
            for m in ("text", "image")
            for c in s.concurrency
        ]
        cells.append(self.cell("image", max(s.concurrency), 1))
        with self.server(self.repo) as server:
            results = self.run_cells(server, cells, "triton")
        for modality in ("text", "image"):
            best = max(
                (r for r in results if r["modality"] == modality and r["rows"] > 1), key=lambda r: r["items_per_s"]
            )
            self.served_batch[modality] = best["trunk_avg_batch_rows"]

    def max_batch_one(self) -> None:
        repo = self.export("fused-max-batch-1", text_max_batch=1, image_max_batch=1)
        with self.server(repo) as server:
            self.run_cells(server, [self.cell("image", max(self.setup.concurrency), 1)], "triton max batch 1")

    # -- compiled ----------------------------------------------------------------------------------------------

    def compiled(self) -> None:
        s = self.setup
        compile_args = {"compile_mode": s.compile_mode, "compile_backend": s.compile_backend}
        for modality in ("text", "image"):
            batch = s.text_batch if modality == "text" else s.image_batch
            buckets = tuple(sorted({b for b in s.buckets if b < batch} | {batch}))
            fused = self.fused(modality, **compile_args, buckets=buckets)
            started = time.monotonic()
            fused.warm(buckets, self.model.cfg.text_cfg.max_len)
            self.report.data.setdefault("compile_s", {})[modality] = round(time.monotonic() - started, 1)
            if not fused.trunk.compiled:
                self.report.add(
                    "errors", f"direct compile ({modality}): fell back to eager: {fused.trunk.compile_error}"
                )
                continue
            self.measure_fused(fused, modality, batch, "mixed only", "max", "direct fused compiled")
            del fused
            self.free()
        repo = self.export(
            "fused-compiled", torch_compile=s.compile_mode, compile_backend=s.compile_backend, compile_buckets=s.buckets
        )
        c = max(s.concurrency)
        with self.server(repo) as server:
            compiled = trunk_compiled(server.metrics_port)
            self.report.data["triton_compiled_models"] = compiled
            path = (
                "triton compiled" if compiled and all(v == 1 for v in compiled.values()) else "triton (compile failed)"
            )
            self.run_cells(server, [self.cell("text", c, s.text_rows), self.cell("image", c, s.image_rows)], path)

    def phases(self) -> list[tuple[str, float, Callable[[], None]]]:
        """(name, seconds it may need on the GPU machine, run), most important first."""
        phases: list[tuple[str, float, Callable[[], None]]] = [
            ("direct", 60, self.direct),
            ("triton", 170, self.triton),
            ("served batch", 25, self.direct_at_served_batch),
            ("max batch 1", 70, self.max_batch_one),
        ]
        if self.setup.compile:
            phases.append(("compiled", 200, self.compiled))
        return phases


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", type=Path, default=None, help="folder with the carried tritonclient + pytriton")
    parser.add_argument("--stub-env", type=Path, default=None, help="folder with numpy 1 for the Python backend stub")
    parser.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    parser.add_argument("--dry-run", action="store_true", help="tiny model on CPU: every code path, in a minute")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--budget-s", type=float, default=500.0, help="skip phases that would not fit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.site:
        sys.path.insert(0, str(args.site))
    sys.path.insert(0, str(ROOT))
    from bench.gpu_summary import summary, table

    setup = DRY if args.dry_run else FULL
    if args.no_compile:
        setup = replace(setup, compile=False)
    deadline = time.monotonic() + args.budget_s
    report = Report(args.out, {"environment": environment(args.site), "setup": asdict(setup)})
    print(json.dumps(report.data["environment"]), flush=True)
    with tempfile.TemporaryDirectory(prefix="tipsv2-gpu-bench-") as tmp:
        bench = Bench(setup, args, Path(tmp), report)
        bench.prepare()
        for name, needs_s, run in bench.phases():
            if time.monotonic() + needs_s > deadline and not args.dry_run:
                report.add("skipped", f"{name}: needs about {needs_s:.0f} s, {deadline - time.monotonic():.0f} s left")
                continue
            started = time.monotonic()
            try:
                run()
            except Exception as exc:  # report and go on: a failed phase must not hide the others' numbers
                report.add("errors", f"{name}: {type(exc).__name__}: {exc}"[:2000])
            report.data.setdefault("phase_s", {})[name] = round(time.monotonic() - started, 1)
            print(table(report.data), flush=True)
    report.data["summary"] = summary(report.data)
    report.save()
    print(json.dumps(report.data["summary"], indent=2))
    failed = report.data["errors"] or any(r["errors"] for r in report.data["triton"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
