"""`tipsv2 local up`: build the tiny model if needed, then run Redis, Triton and the gateway until Ctrl-C."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from service.local.redis_server import RedisServer
from service.triton.repository import MANIFEST, RepositoryOptions
from service.triton.server import TritonServer

log = logging.getLogger(__name__)
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
        from training.export.pipeline import build_local_weights, export_repository

        if not (self.weights / "tokenizer.model").is_file():
            log.info("building the %s model in %s", self.variant, self.weights)
            build_local_weights(self.weights, self.variant)
        manifest = self.repository / MANIFEST
        store = str(self.adapters.resolve())
        if not manifest.is_file() or json.loads(manifest.read_text())["options"]["adapter_store"] != store:
            log.info("exporting the model repository to %s", self.repository)
            self.adapters.mkdir(parents=True, exist_ok=True)
            export_repository(self.weights, self.variant, self.repository, RepositoryOptions(adapter_store=store))

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
        with redis, triton:
            os.environ.update(self.gateway_env())
            print(
                f"redis :{self.redis_port}  triton :{self.triton_grpc_port} (metrics :{self.triton_metrics_port})"
                f"  gateway http://127.0.0.1:{self.gateway_port}"
            )
            print(
                f"try: curl -s localhost:{self.gateway_port}/v1/embeddings -H 'Authorization: Bearer "
                f"{os.environ['TIPS_DEV_API_KEY']}' -H 'Content-Type: application/json' -d '{{\"input\": \"a red "
                f"circle\"}}'"
            )
            uvicorn.run(
                "service.main:app",
                host="127.0.0.1",
                port=self.gateway_port,
                log_level="info",
                timeout_graceful_shutdown=10,
            )


def _exit_on_signal(signum: int, _frame: object) -> None:
    sys.exit(128 + signum)
