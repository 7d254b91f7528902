"""`tipsv2 local up`: build the tiny model if needed, then run Redis, Triton and the gateway until Ctrl-C."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.tools.local.redis_server import RedisServer
from service.tools.local.steps import quiet_libraries, step
from service.tools.local.tritonserver import TritonServer
from service.triton.repository import MANIFEST, RepositoryOptions

LOCAL_DEV_KEY = "tipsv2-local-dev-key"  # development only: the gateway refuses any dev key in production


@dataclass
class LocalStack:
    root: Path = Path("build/local")
    variant: str = "tipsv2-tiny"
    gateway_port: int = 8080
    triton_http_port: int = 8000
    triton_grpc_port: int = 8001
    triton_metrics_port: int = 8002
    redis_port: int = 6379
    # The adapter store's path as Triton will see it, baked into the repository; None: `adapters` under `root` (the
    # local stack). A container deployment passes its mount point (compose and the chart: /var/lib/tipsv2/adapters).
    adapter_store: str | None = None

    @property
    def weights(self) -> Path:
        return self.root / "weights"

    @property
    def repository(self) -> Path:
        return self.root / "model_repository"

    @property
    def adapters(self) -> Path:
        return self.root / "adapters"

    def prepare(self) -> None:
        """Builds the weights and the repository unless they are already there (delete build/local to rebuild)."""
        from service.triton.build import build_repository
        from training.export.pipeline import build_local_weights

        quiet_libraries()
        if not (self.weights / "tokenizer.model").is_file():
            with step(f"building the {self.variant} model (seeded weights, tokenizer) in {self.weights}"):
                build_local_weights(self.weights, self.variant)
        manifest = self.repository / MANIFEST
        store = self.adapter_store or str(self.adapters.resolve())
        if not manifest.is_file() or json.loads(manifest.read_text())["options"]["adapter_store"] != store:
            with step(f"exporting the Triton repository (ONNX trunks checked against PyTorch) to {self.repository}"):
                if self.adapter_store is None:
                    self.adapters.mkdir(parents=True, exist_ok=True)
                build_repository(self.weights, self.variant, self.repository, RepositoryOptions(adapter_store=store))

    def gateway_env(self) -> dict[str, str]:
        return {
            "TIPS_DEV_API_KEY": os.environ.get("TIPS_DEV_API_KEY", LOCAL_DEV_KEY),
            "TIPS_TOKENIZER_PATH": str((self.weights / "tokenizer.model").resolve()),
            "TIPS_TRITON__URL": f"127.0.0.1:{self.triton_grpc_port}",
            "TIPS_REDIS__URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "TIPS_ADAPTER_STORE": str(self.adapters.resolve()),
        }

    def run(self) -> None:
        import uvicorn

        self.prepare()
        redis = RedisServer(self.redis_port, (self.root / "redis").resolve())
        triton = TritonServer(
            self.repository.resolve(),
            (self.root / "triton").resolve(),
            self.triton_http_port,
            self.triton_grpc_port,
            self.triton_metrics_port,
        )
        # uvicorn re-raises SIGTERM after its graceful shutdown; turning it into SystemExit lets the servers stop.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        with contextlib.ExitStack() as servers:
            with step(f"redis-server on :{self.redis_port}"):
                servers.enter_context(redis)
            with step(
                f"tritonserver on :{self.triton_grpc_port} (http :{self.triton_http_port}, metrics "
                f":{self.triton_metrics_port}; log {triton.log_path})",
                progress=triton.models_ready,
            ):
                servers.enter_context(triton)
            os.environ.update(self.gateway_env())
            print(f"gateway on http://127.0.0.1:{self.gateway_port} (docs: /docs); Ctrl-C stops everything")
            print(
                f"try: curl -s localhost:{self.gateway_port}/v1/embeddings -H 'Authorization: Bearer "
                f"{os.environ['TIPS_DEV_API_KEY']}' -H 'Content-Type: application/json' -d '{{\"input\": \"a red "
                f"circle\"}}'"
            )
            uvicorn.run(
                "service.gateway.main:app",
                host="127.0.0.1",
                port=self.gateway_port,
                log_config=quiet_uvicorn_logging(),
                timeout_graceful_shutdown=10,
            )


def quiet_uvicorn_logging() -> dict[str, Any]:
    """uvicorn's logging with its start-up lines (server process, lifespan, "running on") at WARNING; requests are
    still logged, one line each."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["uvicorn.error"]["level"] = "WARNING"
    return config


def _exit_on_signal(signum: int, _frame: object) -> None:
    sys.exit(128 + signum)
