"""The stack a scenario measures, started for real: the tiny TIPSv2 built once into a work folder, Triton repositories
derived from it, then redis-server, tritonserver and a gateway process (uvicorn) on free loopback ports.

    model = build_model(workdir)                                  # weights + one exported repository, reused
    repo = derive_repository(model, workdir / "r", text_max_batch=1, adapter_store=...)  # no re-export
    with Stack(repo, workdir / "s", model.tokenizer, store) as stack:
        stack.gateway_url, stack.triton_url, stack.headers, stack.memory_mib()

The gateway is configured only through TIPS_* variables, as in production, with the rate limit off (0 = unlimited)
unless a scenario asks for one: the benchmarks measure serving, not the per-tenant quota.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
VARIANT = "tipsv2-tiny"
TENANT = "bench"
DEFAULT_WORKDIR = ROOT / "build" / "bench" / "work"
RESOLUTIONS = (224, 448, 896)
GATEWAY_WORKERS = 2  # the chart's and compose's default (`gateway.workers`, TIPS_WORKERS): one per core here


@dataclass(frozen=True)
class Model:
    weights: Path
    repository: Path  # exported once (ONNX trunks checked against PyTorch); others are derived from its files

    @property
    def tokenizer(self) -> Path:
        return self.weights / "tokenizer.model"

    @property
    def served(self) -> dict[str, Any]:
        from service.triton.repository import read_manifest

        return dict(read_manifest(self.repository)["served"])


def build_model(workdir: Path, resolutions: tuple[int, ...] = RESOLUTIONS) -> Model:
    """The tiny model's weights and a repository serving `resolutions`, built unless `workdir` already has them
    (an existing repository is reused whatever it serves; delete it to rebuild)."""
    from service.triton.build import build_repository
    from service.triton.repository import MANIFEST, RepositoryOptions
    from training.export.pipeline import build_local_weights

    weights, repository = workdir / "weights", workdir / "repository"
    if not (weights / "tokenizer.model").is_file():
        build_local_weights(weights, VARIANT)
    if not (repository / MANIFEST).is_file():
        build_repository(weights, VARIANT, repository, RepositoryOptions(), resolutions)
    return Model(weights, repository)


DIRECT_QUEUE_DELAY_US = 2000  # Triton's queue window for clients that send it one row per request


def bench_options(**overrides: Any) -> Any:
    """The repository options every scenario starts from: one onnxruntime thread per trunk (the gateway, the
    embedding stages and the load generator share the same two cores), dynamic batching with a 2 ms window, which
    clients calling Triton with one row per request need to form batches. Scenarios of the gateway override it with
    the served default (`served_options`)."""
    from service.triton.repository import RepositoryOptions

    return replace(RepositoryOptions(intra_op_threads=1, max_queue_delay_us=DIRECT_QUEUE_DELAY_US), **overrides)


def served_delay_us() -> int:
    """The queue window of the repository the product exports (`RepositoryOptions`): what the gateway is served by."""
    from service.triton.repository import RepositoryOptions

    return RepositoryOptions().max_queue_delay_us


def derive_repository(model: Model, out: Path, **overrides: Any) -> Path:
    """A repository with other options (batch sizes, adapter store, bank capacity, ...) from the exported files."""
    from service.triton.repository import (
        IMAGE_EMBED,
        IMAGE_TRUNK,
        ONNX_FILE,
        TEXT_EMBED,
        TEXT_TRUNK,
        write_repository,
    )
    from training.contracts.served import ServedModel
    from training.export.artifacts import Artifacts

    if "adapter_store" in overrides:  # Triton reads it from the model's own folder: make it absolute
        overrides["adapter_store"] = str(Path(overrides["adapter_store"]).resolve())
    served = model.served
    served["resolutions"] = tuple(served["resolutions"])
    repo = model.repository
    artifacts = Artifacts(
        text_embed=repo / TEXT_EMBED / "1" / "embed.safetensors",
        image_embed=repo / IMAGE_EMBED / "1" / "embed.safetensors",
        text_trunk_onnx=repo / TEXT_TRUNK / "1" / ONNX_FILE,
        image_trunk_onnx=repo / IMAGE_TRUNK / "1" / ONNX_FILE,
    )
    return write_repository(out, ServedModel(**served), artifacts, bench_options(**overrides))


# --- adapters -------------------------------------------------------------------------------------------------


def adapter_file(model_id: str, seed: int, dim: int = 64, rank: int = 4) -> bytes:
    """A valid AdaLink file (text and image parts) for the served model, the activations taken in turn."""
    from training.adalink.samples import random_adapter
    from training.contracts.activations import NAMES

    return random_adapter(model_id, dim, seed=seed, rank=rank, activation=NAMES[seed % len(NAMES)], task="bench")


def populate_store(store: Path, model_id: str, names: list[str], tenant: str = TENANT) -> list[str]:
    """Writes adapters straight into the store layout the gateway writes (same files, same manifests), without
    the gateway's per-file fsyncs: 10,000 uploads through the API would take minutes of this machine's disk.
    Returns their ids (`tenant/name/1/digest`)."""
    from service.gateway.adapters.store import AdapterManifest, StoredVersion
    from training.contracts.adapter_file import validate_adapter
    from training.contracts.adapter_store import MANIFEST, write_version

    ids = []
    for index, name in enumerate(names):
        data = adapter_file(model_id, index)
        info = validate_adapter(data, base_hash=model_id, dim=64)
        sha = hashlib.sha256(data).hexdigest()
        metadata = {**info.metadata(), "sha256": info.sha256}  # what the gateway's upload stores
        stored = StoredVersion(1, sha[:16], sha, len(data), "2026-01-01T00:00:00.000+00:00", metadata)
        manifest = AdapterManifest(tenant, name, 2, 1, (stored,), updated_at=stored.created_at)
        path = write_version(store, tenant, name, 1, data).path(store)
        (path.parent / MANIFEST).write_text(manifest.to_json())
        ids.append(manifest.adapter_id(stored))
    return ids


# --- processes ------------------------------------------------------------------------------------------------


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (all their threads)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def process_group(pgid: int) -> list[int]:
    """tritonserver and its Python-backend stubs (it runs in its own session, so they share its group)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    pids.append(int(entry.name))
    return pids


class HttpProcess:
    """An HTTP server in its own process group (its worker processes included), started by `command` (which gets
    `{port}` filled in) in `cwd`, and ready when `GET ready_path` answers 200."""

    def __init__(
        self, command: list[str], env: dict[str, str], log: Path, ready_path: str = "/readyz", cwd: Path = ROOT
    ) -> None:
        from service.tools.local.redis_server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [part.format(port=self.port) for part in command]
        self.env, self.log, self.ready_path, self.cwd = env, log, ready_path, cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> HttpProcess:
        with open(self.log, "wb") as handle:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command[:4]} exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}{self.ready_path}", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.command[:4]} not ready after {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def pids(self) -> list[int]:
        """The server's processes: the one started and its workers (they share its process group)."""
        return process_group(self.process.pid) if self.process is not None else []

    def rss_mib(self) -> float:
        return rss_mib(self.pids())


def gateway_process(env: dict[str, str], log: Path, workers: int = GATEWAY_WORKERS) -> HttpProcess:
    """The gateway as the chart and compose run it: `python -m service.gateway.workers` with `workers` processes."""
    command = [sys.executable, "-m", "service.gateway.workers", "--host", "127.0.0.1", "--port", "{port}"]
    return HttpProcess([*command, "--workers", str(workers), "--log-level", "warning"], env, log)


def granian_gateway_process(env: dict[str, str], log: Path, workers: int = GATEWAY_WORKERS) -> HttpProcess:
    """The same app under granian (a Rust HTTP server) instead of uvicorn: the comparison the bench reports."""
    command = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}"]
    command += ["--workers", str(workers), "--loop", "uvloop", "--runtime-mode", "st", "--no-ws", "--no-access-log"]
    return HttpProcess([*command, "--log-level", "warning", "service.gateway.main:app"], env, log)


def baseline_gateway_process(tree: Path, env: dict[str, str], log: Path) -> HttpProcess:
    """An earlier version's gateway (`baseline_tree`), run as that version ran it: uvicorn with one worker, and
    without the C parts it did not depend on (uvicorn's asyncio loop and h11 parser, redis-py's Python parser)."""
    command = [sys.executable, "-m", "uvicorn", "service.gateway.main:app", "--host", "127.0.0.1", "--port", "{port}"]
    command += ["--loop", "asyncio", "--http", "h11", "--no-access-log", "--log-level", "warning"]
    shim = str(ROOT / "bench" / "baseline_env")
    return HttpProcess(command, {**env, "PYTHONPATH": shim}, log, cwd=tree)


def baseline_tree(ref: str, workdir: Path) -> Path:
    """The `service/` and `training/` packages of git revision `ref`, unpacked once under `workdir`: a gateway
    started with this folder as its working directory imports them instead of the checkout's (same virtualenv)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short=12", ref], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    tree = workdir / f"baseline-{sha}"
    if not (tree / "service" / "main.py").is_file():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "service", "training"], cwd=ROOT, check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


@dataclass
class Stack:
    """redis-server, tritonserver and (unless `gateway=False`) one gateway process; a context manager."""

    repository: Path
    workdir: Path
    tokenizer: Path
    adapter_store: Path
    gateway: bool = True
    gateway_env: dict[str, str] = field(default_factory=dict)  # e.g. {"TIPS_RATE_LIMIT__REQUESTS": "1000000"}
    gateway_workers: int = GATEWAY_WORKERS
    # A second tritonserver for the clients that call Triton directly (`direct_url`), from a repository configured
    # for them (e.g. with a queue window): the served repository is configured for the gateway, which batches itself.
    direct_repository: Path | None = None
    direct: Any = field(default=None, init=False)
    key: str = field(default_factory=lambda: f"bench-{secrets.token_urlsafe(16)}")
    _servers: list[Any] = field(default_factory=list)
    _extra_gateways: list[HttpProcess] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def triton_url(self) -> str:
        return f"127.0.0.1:{self.triton.grpc_port}"

    @property
    def direct_url(self) -> str:
        """Where clients that call Triton directly go: the second tritonserver if there is one."""
        return f"127.0.0.1:{self.direct.grpc_port}" if self.direct is not None else self.triton_url

    @property
    def triton_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.triton.metrics_port}/metrics"

    @property
    def gateway_url(self) -> str:
        return self.gateway_process.url

    def env(self) -> dict[str, str]:
        from service.gateway.core.config import hash_key

        return {
            "TIPS_API_KEYS": json.dumps({hash_key(self.key): TENANT}),
            "TIPS_TOKENIZER_PATH": str(self.tokenizer.resolve()),
            "TIPS_ADAPTER_STORE": str(self.adapter_store.resolve()),
            "TIPS_TRITON__URL": self.triton_url,
            "TIPS_REDIS__URL": self.redis.url,
            "TIPS_RATE_LIMIT__REQUESTS": "0",  # 0 = unlimited (service/gateway/core/config.py)
            "TIPS_LOG_LEVEL": "WARNING",
            **self.gateway_env,
        }

    def __enter__(self) -> Stack:
        from service.tools.local.redis_server import RedisServer, free_port
        from service.tools.local.tritonserver import TritonServer

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.adapter_store.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.workdir / "redis", ignore_errors=True)  # a fresh cache: no hits left by an earlier run
        try:
            self.redis = RedisServer(free_port(), self.workdir / "redis").start()
            self._servers.append(self.redis)
            self.triton = TritonServer(
                self.repository.resolve(), (self.workdir / "triton").resolve(), free_port(), free_port(), free_port()
            )
            self._servers.append(self.triton.start(timeout=180))
            if self.direct_repository is not None:
                ports = (free_port(), free_port(), free_port())
                self.direct = TritonServer(
                    self.direct_repository.resolve(), (self.workdir / "triton-direct").resolve(), *ports
                )
                self._servers.append(self.direct.start(timeout=180))
            if self.gateway:
                log = self.workdir / "gateway.log"
                self.gateway_process = gateway_process(self.env(), log, self.gateway_workers).start()
                self._servers.append(self.gateway_process)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        while self._servers:
            self._servers.pop().stop()

    def start_gateway(
        self, name: str, baseline: Path | None = None, workers: int | None = None, granian: bool = False, **env: str
    ) -> HttpProcess:
        """Another gateway on the same Triton and Redis (stopped with the stack): this checkout's (under uvicorn, or
        granian), or an earlier version's from `baseline_tree`."""
        log = self.workdir / f"gateway-{name}.log"
        if granian:
            process = granian_gateway_process({**self.env(), **env}, log, workers or self.gateway_workers)
        elif baseline is not None:
            process = baseline_gateway_process(baseline, {**self.env(), **env}, log)
        else:
            process = gateway_process({**self.env(), **env}, log, self.gateway_workers if workers is None else workers)
        gateway = process.start()
        self._servers.append(gateway)
        self._extra_gateways.append(gateway)
        return gateway

    def memory_mib(self) -> dict[str, float]:
        """Resident memory of the gateway, of tritonserver with its Python-backend stubs, and of Redis."""
        out = {}
        if self.gateway:
            out["gateway"] = self.gateway_process.rss_mib()
        if self.triton.process is not None:
            out["triton"] = rss_mib(process_group(self.triton.process.pid))
        if self.redis.process is not None:
            out["redis"] = rss_mib([self.redis.process.pid])
        return out

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by the gateway, by tritonserver with its stubs, and by Redis: differences over a
        cell, per request, are what each part costs, a figure that contention on the machine barely moves."""
        out = {}
        gateways = [self.gateway_process, *self._extra_gateways] if self.gateway else self._extra_gateways
        if gateways:  # all gateway processes together: only one is sent requests at a time
            out["gateway"] = cpu_seconds([pid for g in gateways for pid in g.pids()])
        tritons = [t.process.pid for t in (self.triton, self.direct) if t is not None and t.process is not None]
        if tritons:  # both tritonservers together: only one is sent requests at a time
            out["triton"] = cpu_seconds([pid for group in tritons for pid in process_group(group)])
        if self.redis.process is not None:
            out["redis"] = cpu_seconds([self.redis.process.pid])
        return out

    def model_id(self) -> str:
        return str(httpx.get(f"{self.gateway_url}/readyz", timeout=10).json()["model_id"])

    def upload(self, name: str, data: bytes, client: httpx.Client | None = None) -> tuple[int, float]:
        """One upload through the API: (status, seconds)."""
        own = client is None
        client = client or httpx.Client(timeout=60)
        try:
            started = time.perf_counter()
            response = client.post(
                f"{self.gateway_url}/v1/adapters",
                headers=self.headers,
                files={"file": ("a.safetensors", data)},
                data={"name": name},
            )
            return response.status_code, time.perf_counter() - started
        finally:
            if own:
                client.close()


def with_cpu(stack: Stack, sent: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Runs one cell (`sent` requests in all, warm-up included) and adds each server's CPU milliseconds per request:
    on a shared machine these move far less than throughput does, and they say which part limits it."""
    before = stack.cpu_seconds()
    result = run()
    after = stack.cpu_seconds()
    per_request = {name: round((after[name] - before[name]) * 1e3 / max(sent, 1), 3) for name in after}
    per_request["client"] = result.get("client_cpu_ms_per_request", 0.0)
    return {**result, "cpu_ms_per_request": per_request}
