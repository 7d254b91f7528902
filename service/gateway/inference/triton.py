"""The real backend: Triton's gRPC API through `tritonclient.grpc.aio`.

Calls go through a `CallBatcher` (`service.gateway.inference.batching`): the rows of concurrent requests for the same
model, shapes and outputs travel in one call of at most the ensemble's max batch size, and large requests are split into
such calls, sent concurrently so that Triton's dynamic batcher can pack them with other clients' work. Failures map to
gateway errors: unreachable -> 503 with Retry-After, deadline -> 504, queue full -> 503 overloaded, anything else ->
502.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from service.gateway.core.config import TritonSettings
from service.gateway.core.errors import ErrorKind, GatewayError
from service.gateway.core.metrics import Metrics
from service.gateway.inference.backend import IMAGE_OUTPUTS, ServedModelInfo
from service.gateway.inference.batching import CallBatcher
from training.contracts.served import ADAPTER, INPUTS, OUTPUTS, ServedModel, triton_dtype

log = logging.getLogger(__name__)


class TritonBackend:
    def __init__(self, settings: TritonSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.client = grpcclient.InferenceServerClient(settings.url, channel_args=channel_args(settings))
        self._served: ServedModelInfo | None = None
        self.batcher = CallBatcher(self._infer, settings.max_calls_in_flight, self._observe_call)

    async def close(self) -> None:
        await self.batcher.close()
        await self.client.close()

    def _observe_call(self, model: str, rows: int, requests: int) -> None:
        self.metrics.triton_call_rows.labels(model).observe(rows)
        self.metrics.triton_call_requests.labels(model).observe(requests)

    def _unavailable(self, what: str) -> GatewayError:
        return GatewayError(
            ErrorKind.BACKEND_UNAVAILABLE,
            f"inference server unavailable: {what}",
            code="triton_unavailable",
            retry_after=self.settings.retry_after_s,
        )

    async def served_model(self) -> ServedModelInfo:
        if self._served is None:
            try:
                text = await self.client.get_model_config(self.settings.text_model, as_json=True, client_timeout=5)
                image = await self.client.get_model_config(self.settings.image_model, as_json=True, client_timeout=5)
            except InferenceServerException as exc:
                raise self._unavailable(exc.message() or "model config") from exc
            self._served = _served_from_configs(text["config"], image["config"])
        return self._served

    async def ready(self) -> bool:
        try:
            ok = await self.client.is_server_ready(client_timeout=2)
            ok = ok and await self.client.is_model_ready(self.settings.text_model, client_timeout=2)
            ok = ok and await self.client.is_model_ready(self.settings.image_model, client_timeout=2)
        except InferenceServerException:
            ok = False
        if ok:
            try:
                await self.served_model()
            except GatewayError:
                ok = False
        self.metrics.triton_up.set(1 if ok else 0)
        return bool(ok)

    async def embed_text(self, ids: np.ndarray, adapters: list[str]) -> np.ndarray:
        served = await self.served_model()
        model = self.settings.text_model
        result = await self._within_deadline(
            model, self.batcher.submit(model, {INPUTS["text"]: ids}, adapters, OUTPUTS["text"], served.text_max_batch)
        )
        return result[OUTPUTS["text"][0]]

    async def embed_image(
        self, pixels: np.ndarray, adapters: list[str], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        unknown = set(outputs) - set(IMAGE_OUTPUTS)
        if unknown:
            raise ValueError(f"unknown image outputs {sorted(unknown)}")
        served = await self.served_model()
        model = self.settings.image_model
        return await self._within_deadline(
            model, self.batcher.submit(model, {INPUTS["image"]: pixels}, adapters, outputs, served.image_max_batch)
        )

    async def _within_deadline(self, model: str, batched: Awaitable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The Triton deadline bounds the whole wait, time in the batcher's queue included: a request queued behind
        stalled calls times out when its own deadline is up (its rows are then dropped from the lane)."""
        try:
            return await asyncio.wait_for(batched, self.settings.timeout_s)
        except TimeoutError:
            self.metrics.triton_failures.labels(model, "timeout").inc()
            raise self._timeout() from None

    async def _infer(
        self, model: str, arrays: dict[str, np.ndarray], adapters: list[str], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        inputs = []
        for name, array in arrays.items():
            tensor = grpcclient.InferInput(name, list(array.shape), triton_dtype(array))
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        adapter = np.array([a.encode() for a in adapters], dtype=object).reshape(-1, 1)
        adapter_input = grpcclient.InferInput(ADAPTER, list(adapter.shape), "BYTES")
        adapter_input.set_data_from_numpy(adapter)
        inputs.append(adapter_input)
        requested = [grpcclient.InferRequestedOutput(name) for name in outputs]
        started = time.perf_counter()
        try:
            result = await self.client.infer(model, inputs, outputs=requested, client_timeout=self.settings.timeout_s)
        except InferenceServerException as exc:
            raise self._map_error(model, exc) from exc
        finally:
            self.metrics.triton_duration.labels(model).observe(time.perf_counter() - started)
        return {name: result.as_numpy(name) for name in outputs}

    def _timeout(self) -> GatewayError:
        return GatewayError(
            ErrorKind.BACKEND_TIMEOUT,
            f"inference did not finish within {self.settings.timeout_s:g} s",
            code="triton_timeout",
        )

    def _map_error(self, model: str, exc: InferenceServerException) -> GatewayError:
        status, message = str(exc.status() or ""), str(exc.message() or "")
        if "DEADLINE_EXCEEDED" in status or "Deadline" in message:
            self.metrics.triton_failures.labels(model, "timeout").inc()
            return self._timeout()
        if "maximum queue size" in message or ("timeout" in message.lower() and "queue" in message.lower()):
            self.metrics.triton_failures.labels(model, "overloaded").inc()
            return GatewayError(
                ErrorKind.OVERLOADED, "inference queue is full; retry later", code="triton_queue_full", retry_after=1
            )
        if "UNAVAILABLE" in status:
            self.metrics.triton_failures.labels(model, "unavailable").inc()
            self._served = None  # the server may come back with another model
            return self._unavailable(message or "connection failed")
        if "unknown adapter" in message:
            self.metrics.triton_failures.labels(model, "adapter").inc()
            return GatewayError(ErrorKind.NOT_FOUND, message, code="adapter_not_found", param="adapter")
        self.metrics.triton_failures.labels(model, "error").inc()
        log.warning("triton error on %s: %s %s", model, status, message)
        return GatewayError(ErrorKind.BACKEND_ERROR, f"inference failed: {message}", code="triton_error")


def channel_args(settings: TritonSettings) -> list[tuple[str, Any]]:
    """tritonclient's default channel options plus a bounded reconnect backoff (see `reconnect_backoff_s`)."""
    keepalive = grpcclient.KeepAliveOptions()
    backoff_ms = max(1, int(settings.reconnect_backoff_s * 1000))
    return [
        ("grpc.max_send_message_length", grpcclient.MAX_GRPC_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", grpcclient.MAX_GRPC_MESSAGE_SIZE),
        ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", keepalive.keepalive_permit_without_calls),
        ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
        ("grpc.initial_reconnect_backoff_ms", min(100, backoff_ms)),
        ("grpc.max_reconnect_backoff_ms", backoff_ms),
    ]


def _served_from_configs(text: dict[str, Any], image: dict[str, Any]) -> ServedModelInfo:
    params = {k: v["string_value"] for k, v in text.get("parameters", {}).items()}
    try:
        return ServedModelInfo(
            **ServedModel.fields_from_parameters(params),  # type: ignore[arg-type]
            text_max_batch=int(text.get("max_batch_size", 64)),
            image_max_batch=int(image.get("max_batch_size", 8)),
        )
    except (KeyError, ValueError) as exc:
        raise GatewayError(
            ErrorKind.BACKEND_ERROR, f"the served ensemble lacks TIPSv2 parameters: {exc}", code="triton_misconfigured"
        ) from exc
