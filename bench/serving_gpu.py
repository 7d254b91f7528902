"""One GPU, one TIPSv2 B/14 (seeded random weights), three ways side by side, 64 tenants' adapters mixed in every batch:

  direct eager    the served code in-process: torch embedding stage + device-resident adapter bank + torch trunk
                  (bf16), host arrays in, host arrays out (the same transfers the server makes)
  direct compile  the same with the trunk under torch.compile
  triton          the real tritonserver (bundled in nvidia-pytriton, carried to the GPU machine as described in
                  docs/benchmarks.md) serving the `local` flavour, runtime torch on cuda: that same code, behind
                  dynamic batching, driven by gRPC clients in separate processes

and the cost of the adapters (64 mixed vs none) in the direct path, side by side with the plain-PyTorch figures of
../shared/reference/gpu_anchors.md (same machine kind), and a summary: the served path over direct eager (the
issue's target: at least 0.9x) and each direct path over its anchor. Prints a table; writes serving_gpu.json into
--out after every phase, so a run cut short still leaves what it measured. Phases that would not fit the time
budget are skipped and say so.

On the H200 machine (device tool; carry .whl/ made by bench/gpu_carry.sh, see docs/benchmarks.md):
    mkdir -p /tmp/site /tmp/stubenv && tar -xJf .whl/pytriton-slim.tar.xz -C /tmp/site \
      && pip install -q --no-index --no-deps --target /tmp/site .whl/tritonclient-*.whl .whl/python_rapidjson-*.whl \
           .whl/sentencepiece-*.whl \
      && pip install -q --no-index --no-deps --target /tmp/stubenv .whl/numpy-1.26.4-*.whl \
      && python3 bench/serving_gpu.py --site /tmp/site --stub-env /tmp/stubenv --out $OUT
CPU smoke test of every code path (tiny model, CPU torch, short phases):
    python bench/serving_gpu.py --dry-run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Setup:
    variant: str
    device: str
    dtype: str
    text_batch: int  # direct batch = the served max batch
    text_rows: int  # rows per gRPC request
    image_batch: int
    image_rows: int
    resolution: int
    tenants: int
    rank: int
    seconds: float  # per direct measurement
    requests: int  # per Triton cell (bounded)
    concurrency: tuple[int, ...]
    processes: int  # load-generator processes per Triton cell
    compile: bool
    trunk_instances: int
    threads: int  # CPU threads per Triton model instance (0 = torch's default)
    margin_s: float  # load processes' start-up before a measured window


FULL = Setup("tipsv2-b14", "cuda", "bfloat16", 256, 64, 128, 8, 224, 64, 16, 6.0, 1200, (16, 64), 8, True, 2, 0, 8.0)
DRY = Setup("tipsv2-tiny", "cpu", "float32", 16, 4, 2, 1, 112, 8, 4, 0.3, 16, (4,), 2, False, 1, 1, 3.0)


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
    import hashlib

    import numpy as np

    from training.adalink.format import adapter_bytes, build_metadata

    rng = np.random.default_rng(0)
    ids = []
    for i in range(count):
        tensors = {}
        for modality in ("image", "text"):
            tensors[f"{modality}.down"] = (rng.standard_normal((rank, dim)) / np.sqrt(dim)).astype(np.float32)
            tensors[f"{modality}.up"] = (rng.standard_normal((dim, rank)) * 0.05).astype(np.float32)
        activation = ("identity", "relu", "gelu_tanh", "silu")[i % 4]
        data = adapter_bytes(tensors, build_metadata("bench", model_id, ("image", "text"), rank, dim, activation, "b"))
        digest = hashlib.sha256(data).hexdigest()[:16]
        folder = store / "bench" / f"t{i:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"v1-{digest}.safetensors").write_bytes(data)
        ids.append(f"bench/t{i:02d}/1/{digest}")
    return ids


# -- direct ----------------------------------------------------------------------------------------------------


def timed(step: Callable[[], Any], seconds: float, sync: Callable[[], None]) -> tuple[float, int]:
    """Runs `step` for about `seconds` after warm-up; returns (seconds, steps)."""
    for _ in range(3):
        step()
    sync()
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        steps += 1
    sync()
    return time.perf_counter() - started, steps


def direct_phase(setup: Setup, repo: Path, adapters: list[str], report: Report, compiled: bool) -> None:
    import numpy as np
    import torch

    from service.triton.models.tipsv2_stages_torch import DeviceAdapterBank, TorchImageEmbedStage, TorchTextEmbedStage
    from training.export.torch_trunk import load_torch_trunk

    device = setup.device
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    mode = "default" if compiled else ""
    store = json.loads((repo / "tipsv2_manifest.json").read_text())["options"]["adapter_store"]
    base_hash = json.loads((repo / "tipsv2_manifest.json").read_text())["served"]["model_id"]
    rng = np.random.default_rng(0)
    for modality in ("text", "image"):
        folder = repo / f"tipsv2_{modality}_trunk" / "1"
        trunk = load_torch_trunk(folder, device, setup.dtype, mode)
        weights = str(repo / f"tipsv2_{modality}_embed" / "1" / "embed.safetensors")
        stage = (TorchTextEmbedStage if modality == "text" else TorchImageEmbedStage)(weights, device)
        bank = DeviceAdapterBank(store, modality, stage.dim, base_hash, 128, device)
        batch = setup.text_batch if modality == "text" else setup.image_batch
        if modality == "text":
            host = np.zeros((batch, 64), np.int32)
            host[:, :48] = rng.integers(2, 900, (batch, 48))
        else:
            host = rng.integers(0, 256, (batch, setup.resolution, setup.resolution, 3), dtype=np.uint8)
        wanted = ["text_embedding"] if modality == "text" else ["cls1"]
        mixed = [adapters[i % len(adapters)] for i in range(batch)]
        for label, ids in (("base", [""] * batch), (f"{setup.tenants} adapters", mixed)):
            if compiled and label == "base":
                continue
            step = _direct_step(modality, host, ids, stage, bank, trunk, wanted)
            started = time.perf_counter()
            seconds, steps = timed(step, setup.seconds, sync)
            report.add(
                "direct",
                {
                    "path": "direct compile" if compiled else "direct eager",
                    "modality": modality,
                    "adapters": label,
                    "batch": batch,
                    "items_per_s": round(steps * batch / seconds, 1),
                    "phase_s": round(time.perf_counter() - started, 1),
                },
            )
        del trunk, stage, bank
        if device == "cuda":
            torch.cuda.empty_cache()


def _direct_step(
    modality: str, host: Any, ids: list[str], stage: Any, bank: Any, trunk: Any, wanted: list[str]
) -> Callable[[], dict[str, Any]]:
    """One batch through the served code: host array -> device -> stage -> adapters -> trunk -> host."""
    import torch

    def step() -> dict[str, Any]:
        with torch.inference_mode():
            x = torch.from_numpy(host)
            if modality == "text":
                embeddings, mask = stage(x)
                feeds = {"embeddings": bank.apply(embeddings, bank.slots(ids)), "token_mask": mask}
            else:
                feeds = {"tokens": bank.apply(stage(x), bank.slots(ids))}
            return {k: v.cpu() for k, v in trunk(feeds, wanted).items()}

    return step


# -- triton ----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def served(setup: Setup, repo: Path, workdir: Path, stub_env: Path | None) -> Iterator[Any]:
    from service.local.redis_server import free_port
    from service.triton.server import TritonServer

    extra = []
    if setup.device == "cuda":
        # GPU tensors cross between the stub processes and the server through this pool: size it for a batch.
        extra = ["--cuda-memory-pool-byte-size=0:4294967296", "--pinned-memory-pool-byte-size=1073741824"]
    server = TritonServer(
        repo, workdir / "triton", free_port(), free_port(), free_port(), extra_args=extra, cwd=stub_env
    )
    server.start(timeout=300)
    try:
        yield server
    finally:
        server.stop()


def triton_phase(
    setup: Setup, server: Any, adapters: list[str], report: Report, env: dict[str, str], path: str
) -> None:
    from bench.loadgen import Cell, drive

    cells = []
    for modality, rows in (("text", setup.text_rows), ("image", setup.image_rows)):
        for concurrency in setup.concurrency:
            cells.append(
                Cell(
                    f"{modality} c={concurrency}",
                    modality,
                    concurrency,
                    setup.requests,
                    rows=rows,
                    adapters=tuple(adapters),
                    resolution=setup.resolution,
                    warmup=max(8, len(adapters) // rows + 2),
                )
            )
    url = f"127.0.0.1:{server.grpc_port}"
    for cell in cells:
        (result,) = drive(url, [cell], env=env, processes=setup.processes, margin_s=setup.margin_s)
        report.add("triton", {"path": path, **result})


# -- side by side with ../shared/reference/gpu_anchors.md ------------------------------------------------------

# Plain PyTorch towers in bf16 on an H200 (gpu_anchors.md, 2026-11-28): (modality, path) -> (items/s, batch). Our
# direct rows run the served code (embedding stage + adapter bank + trunk, host arrays in and out) at the served
# max batch, so they are compared with these, not equal to them by construction.
ANCHORS = {
    ("image", "direct eager"): (8085.0, 256),
    ("image", "direct compile"): (8615.0, 256),
    ("text", "direct eager"): (37469.0, 1024),
    ("text", "direct compile"): (39823.0, 1024),
}
ANCHOR_TRITON_IMAGES = 3993.0  # a naive Python-backend model on the same Triton, 16 clients (0.59x direct there)
TARGET_SERVED_OVER_DIRECT = 0.9


def summary(data: dict[str, Any]) -> dict[str, Any]:
    """Per modality: the best served (Triton) throughput over direct eager with the same adapters mixed (the issue's
    target is >= 0.9), and each direct path over its gpu_anchors.md figure."""
    tenants = f"{data['setup']['tenants']} adapters"
    out: dict[str, Any] = {"target_served_over_direct": TARGET_SERVED_OVER_DIRECT}
    for modality in ("text", "image"):
        direct = {
            r["path"]: r["items_per_s"]
            for r in data["direct"]
            if r["modality"] == modality and r["adapters"] == tenants
        }
        served = [r["items_per_s"] for r in data["triton"] if r["modality"] == modality and r["errors"] == 0]
        row: dict[str, Any] = {"best_served": max(served, default=0.0), **direct}
        if direct.get("direct eager") and served:
            row["served_over_direct_eager"] = round(max(served) / direct["direct eager"], 3)
        for path, items in direct.items():
            anchor = ANCHORS.get((modality, path))
            if anchor and data["setup"]["device"] == "cuda":
                row[f"{path} over anchor"] = round(items / anchor[0], 3)
        out[modality] = row
    return out


# -- main ------------------------------------------------------------------------------------------------------


def table(data: dict[str, Any]) -> str:
    eager = {(r["modality"], r["adapters"]): r["items_per_s"] for r in data["direct"] if r["path"] == "direct eager"}
    head = f"{'path':<16}{'modality':<9}{'adapters':<14}{'conc':>5}{'items/s':>11}{'vs eager':>10}"
    lines = [head + f"{'p50 ms':>9}{'p99 ms':>9}{'batch':>7}{'gpu_anchors.md':>24}"]
    for r in data["direct"]:
        ref = eager.get((r["modality"], f"{data['setup']['tenants']} adapters"))
        ratio = f"{r['items_per_s'] / ref:.2f}x" if ref else ""
        anchor = ANCHORS.get((r["modality"], r["path"]))
        side = f"{anchor[0]:,.0f}/s at batch {anchor[1]}" if anchor else ""
        lines.append(
            f"{r['path']:<16}{r['modality']:<9}{r['adapters']:<14}{'':>5}{r['items_per_s']:>11.1f}{ratio:>10}"
            f"{'':>25}{side:>24}"
        )
    for r in data["triton"]:
        ref = eager.get((r["modality"], f"{data['setup']['tenants']} adapters"))
        ratio = f"{r['items_per_s'] / ref:.2f}x" if ref else ""
        side = f"naive Triton {ANCHOR_TRITON_IMAGES:,.0f}/s" if r["modality"] == "image" else ""
        lines.append(
            f"{r['path']:<16}{r['modality']:<9}{str(r['adapters']) + ' adapters':<14}{r['concurrency']:>5}"
            f"{r['items_per_s']:>11.1f}{ratio:>10}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['trunk_avg_batch_rows']:>7.1f}"
            f"{side:>24}"
        )
    return "\n".join(lines)


@dataclass
class Bench:
    """One run: the model, its repository and adapters in `work`, and where the results go."""

    setup: Setup
    args: argparse.Namespace
    work: Path
    report: Report

    def prepare(self) -> None:
        from service.triton.repository import RepositoryOptions
        from training.tipsv2.model import create_model

        self.model = create_model(self.setup.variant, seed=0).eval()
        self.model_id = f"bench-{self.setup.variant}-seed0"
        store = self.work / "adapters"
        self.options = RepositoryOptions(
            runtime="torch",
            device=self.setup.device,  # type: ignore[arg-type]
            compute_dtype=self.setup.dtype,  # type: ignore[arg-type]
            text_max_batch=self.setup.text_batch,
            image_max_batch=self.setup.image_batch,
            max_queue_delay_us=2000,
            trunk_instances=self.setup.trunk_instances,
            intra_op_threads=self.setup.threads,
            adapter_store=str(store),
            adapter_capacity=128,
        )
        self.repo = self.export(self.options, "repository")
        dim = self.model.cfg.embed_dim
        self.adapters = write_adapters(store, self.model_id, dim, self.setup.tenants, self.setup.rank)
        parts = (str(self.args.site or ""), str(ROOT))
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in parts if p)}

    def export(self, options: Any, name: str) -> Path:
        from training.export.pipeline import export_model_repository

        return export_model_repository(self.model, self.model_id, self.work / name, options, (self.setup.resolution,))

    def direct(self, compiled: bool) -> None:
        direct_phase(self.setup, self.repo, self.adapters, self.report, compiled)

    def triton(self) -> None:
        import numpy

        if int(numpy.__version__.split(".")[0]) >= 2 and self.args.stub_env is None:
            raise RuntimeError(
                "numpy 2 here and no --stub-env: the Python backend's stub would corrupt the adapter ids "
                "(BYTES inputs) and die; give it a folder with numpy 1 (docs/benchmarks.md)"
            )
        with served(self.setup, self.repo, self.work, self.args.stub_env) as server:
            triton_phase(self.setup, server, self.adapters, self.report, self.env, "triton")
        if self.setup.device == "cuda" and not any(r["items_per_s"] for r in self.report.data["triton"]):
            # Nothing came back: try once more with tensors handed between the steps through host memory.
            self.report.add("errors", "triton: no request succeeded with GPU tensors between steps; retrying via host")
            host_repo = self.export(replace(self.options, keep_on_device=False), "repository-host")
            with served(self.setup, host_repo, self.work, self.args.stub_env) as server:
                triton_phase(self.setup, server, self.adapters, self.report, self.env, "triton (host)")

    def phases(self) -> list[tuple[str, float, Callable[[], None]]]:
        """(name, seconds it may need, run). Triton before the compiled run: the compiles are the slowest phase and
        the one to lose if time runs out."""
        phases: list[tuple[str, float, Callable[[], None]]] = [
            ("direct eager", 60, lambda: self.direct(compiled=False)),
            ("triton", 200, self.triton),
        ]
        if self.setup.compile:
            phases.append(("direct compile", 240, lambda: self.direct(compiled=True)))
        return phases


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", type=Path, default=None, help="folder with the carried tritonclient + pytriton")
    parser.add_argument("--stub-env", type=Path, default=None, help="folder with numpy 1 for the Python backend stub")
    parser.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    parser.add_argument("--dry-run", action="store_true", help="tiny model on CPU: every code path, in seconds")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--budget-s", type=float, default=540.0, help="skip phases that would not fit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.site:
        sys.path.insert(0, str(args.site))
    sys.path.insert(0, str(ROOT))
    setup = DRY if args.dry_run else FULL
    if args.no_compile:
        setup = replace(setup, compile=False)
    deadline = time.monotonic() + args.budget_s
    report = Report(args.out, {"environment": environment(args.site), "setup": setup.__dict__})
    print(json.dumps(report.data["environment"]), flush=True)
    with tempfile.TemporaryDirectory(prefix="tipsv2-gpu-bench-") as tmp:
        bench = Bench(setup, args, Path(tmp), report)
        bench.prepare()
        for name, needs_s, run in bench.phases():
            if time.monotonic() + needs_s > deadline and not args.dry_run:
                report.add("skipped", f"{name}: needs about {needs_s:.0f} s, {deadline - time.monotonic():.0f} s left")
                continue
            try:
                run()
            except Exception as exc:  # report and go on: a failed phase must not hide the others' numbers
                report.add("errors", f"{name}: {type(exc).__name__}: {exc}"[:2000])
            print(table(report.data), flush=True)
    report.data["summary"] = summary(report.data)
    report.save()
    print(json.dumps(report.data["summary"], indent=2))
    print(json.dumps(report.data))
    failed = report.data["errors"] or any(r["errors"] for r in report.data["triton"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
