"""Gateway settings, read once from the environment (prefix `TIPS_`, nested with `__`, e.g. `TIPS_REDIS__URL`)."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from training.contracts.adapter_file import MAX_FILE_BYTES
from training.contracts.adapter_store import TENANT_RE
from training.contracts.served import IMAGE_MODEL, TEXT_MODEL

PLACEHOLDER_KEYS = {"changeme", "change-me", "dev", "dev-key", "secret", "test", "password", "tipsv2-dev-key"}


class TritonSettings(BaseModel):
    url: str = "127.0.0.1:8001"  # gRPC endpoint
    timeout_s: float = Field(30.0, gt=0)  # per-call client deadline
    text_model: str = TEXT_MODEL
    image_model: str = IMAGE_MODEL
    retry_after_s: int = 2  # Retry-After sent with 503 while Triton is unreachable
    # Cap of gRPC's reconnect backoff. Its default grows to 120 s, so a gateway that saw Triton down for a while
    # would keep answering 503 for up to two minutes after Triton is back; a reconnect attempt is one cheap connect.
    reconnect_backoff_s: float = Field(0.5, gt=0)
    # Cross-request batching (service/gateway/inference/batching.py): calls in flight per model and input shape before
    # further requests wait for one to return and then go together in one call. 0 sends every request at once.
    max_calls_in_flight: int = Field(2, ge=0)


class RedisSettings(BaseModel):
    url: str = "redis://127.0.0.1:6379/0"
    cache_ttl_s: int = Field(7 * 24 * 3600, gt=0)
    socket_timeout_s: float = Field(0.25, gt=0)  # a slow Redis must not slow requests: treat it as a miss
    retry_interval_s: float = Field(1.0, ge=0)  # after a failure, skip Redis this long before trying again
    # Each gateway process's LRU of cache values in front of Redis (bytes of values; 0 disables it). Values are
    # immutable by key, so the copy is never stale; a repeated input then costs no Redis round trip.
    local_cache_bytes: int = Field(64 << 20, ge=0)


class LimitSettings(BaseModel):
    max_body_bytes: int = 32 << 20
    max_items: int = 256  # texts or images per request
    max_text_chars: int = 8192  # per text; tokens beyond the model's 64 are truncated as the official code does
    max_image_bytes: int = 16 << 20
    max_image_pixels: int = 40_000_000  # decoded size: refuses decompression bombs (413)
    # Large JPEGs decode by DCT scaling to >= 2x the model resolution (README "Image decoding"): ~10x less CPU for
    # a phone photo, at a small measured deviation from the full decode (docs/benchmarks.md). False: full decode.
    jpeg_draft: bool = True
    max_inflight: int = 64  # concurrent inference requests; beyond it the gateway answers 503 at once
    # labels per classify/segment request: ImageNet-1k zero-shot sends 1000; above 256 the label map is 16-bit
    max_labels: int = Field(1024, ge=1)
    max_templates: int = Field(16, ge=1)  # prompt templates per classify/segment request
    max_segment_windows: int = Field(64, ge=1)  # sliding windows per segmentation (elongated images)
    # labels x pixels of a segmentation, at the input's and at the resized resolution: bounds the gateway's memory
    # and CPU per request (the slide-mode probabilities are a float32 array of this many elements).
    max_segment_work: int = Field(1 << 27, ge=1)


class AdapterSettings(BaseModel):
    # Largest accepted adapter file (413 above); at most the file format's own limit, which Triton's adapter banks
    # apply when they read the file, so that no upload is accepted that the banks would then refuse.
    max_bytes: int = Field(MAX_FILE_BYTES, gt=0, le=MAX_FILE_BYTES)
    # Each gateway keeps resolved adapters in memory; a Redis notice drops an entry at once, and this TTL bounds how
    # long an entry is trusted without a stat of its manifest, so a swap is seen within it even while Redis is down.
    revalidate_s: float = Field(0.5, ge=0)
    channel: str = "tipsv2:adapters"  # Redis pub/sub channel of change notices


class RateLimitSettings(BaseModel):
    """Per-tenant request budget over a sliding window, kept in Redis so that all replicas share it."""

    requests: int = Field(1200, ge=0)  # per window and tenant; 0 = unlimited
    window_s: int = Field(60, ge=1)
    tenants: dict[str, int] = Field(default_factory=dict)  # per-tenant overrides of `requests`

    def limit_for(self, tenant: str) -> int:
        return self.tenants.get(tenant, self.requests)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIPS_", env_nested_delimiter="__", extra="ignore")

    environment: Literal["development", "production"] = "development"
    # sha256 hex digest of an API key -> tenant id. Keys themselves are never stored.
    api_keys: dict[str, str] = Field(default_factory=dict)
    # Development convenience: one plaintext key for tenant "dev". Refused in production.
    dev_api_key: SecretStr | None = None
    tokenizer_path: Path = Path("build/local/weights/tokenizer.model")
    # The adapter store: a directory (a shared volume in production) that Triton's embedding stages read. None
    # disables uploads (503) and every adapter reference is unknown (404).
    adapter_store: Path | None = None
    adapters: AdapterSettings = Field(default_factory=AdapterSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    served_model_name: str = ""  # "" = whatever Triton serves (read from the ensemble's parameters)
    triton: TritonSettings = Field(default_factory=TritonSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    log_level: str = "INFO"
    # Gateway processes per pod (`python -m service.gateway.workers`), each pinned to its own core; 0 = one per CPU the
    # pod may use. More than one switches Prometheus metrics to multiprocess mode (see service/gateway/workers.py).
    workers: int = Field(1, ge=0)
    # Address and port the gateway's workers listen on (when `python -m service.gateway.workers` is not given
    # --host/--port): every interface in a container; a host-network deployment chooses its own (the compose stack's CI
    # test does).
    host: str = "0.0.0.0"
    port: int = Field(8080, ge=0, le=65535)
    # 0 serves /metrics on the API port (development). A port number serves it there instead and the API port stops
    # answering /metrics: tenant ids and traffic volumes are then visible only to what may reach that port.
    metrics_port: int = Field(0, ge=0, le=65535)
    # Address of that metrics port: all interfaces in a container (Prometheus scrapes it from another one); a host
    # network deployment binds it where its scraper is, e.g. 127.0.0.1 (the compose stack's CI test).
    metrics_host: str = "0.0.0.0"

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for digest, tenant in value.items():
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError("api_keys must map sha256 hex digests of keys to tenants (see `tipsv2 keys hash`)")
            if not TENANT_RE.match(tenant):
                raise ValueError(f"tenant id {tenant!r} must match {TENANT_RE.pattern}")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment != "production":
            return self
        if self.dev_api_key is not None:
            raise ValueError("TIPS_DEV_API_KEY is a development convenience and is refused in production")
        if not self.api_keys:
            raise ValueError("production needs TIPS_API_KEYS (hashed keys mapped to tenants)")
        placeholders = {hash_key(k) for k in PLACEHOLDER_KEYS}
        if placeholders & set(self.api_keys):
            raise ValueError("TIPS_API_KEYS holds the hash of a placeholder key; generate real keys")
        return self

    def key_table(self) -> dict[str, str]:
        """All accepted key digests -> tenant, the development key included."""
        table = dict(self.api_keys)
        if self.dev_api_key is not None:
            table[hash_key(self.dev_api_key.get_secret_value())] = "dev"
        return table


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@lru_cache
def get_settings() -> Settings:
    return Settings()
