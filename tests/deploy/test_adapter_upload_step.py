"""The adapter Job's last step against the real gateway (real Triton and Redis behind it): a trained file is
uploaded, versioned and served; a bad file fails the step with the gateway's reason, without retrying."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.tools.jobs.upload import UploadRefused, upload_adapter
from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import (
    ACME,
    KEYS,
    adapter_file,
    open_gateway,
    served_model_id,
    tenant_settings,
    unique_name,
)

pytestmark = pytest.mark.integration


def test_upload_step_publishes_a_version_the_next_request_uses(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path, tmp_path: Path
) -> None:
    settings = tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)
    with open_gateway(settings) as client:
        name = unique_name("job")
        trained = tmp_path / f"{name}.safetensors"
        trained.write_bytes(adapter_file(served_model_id(client)))
        answer = upload_adapter("http://testserver", KEYS["acme"], name, trained, client=client, sleep=lambda _: None)
        assert answer["uploaded_version"] == 1 and answer["active_version"] == 1
        response = client.post("/v1/embeddings", json={"input": "a red circle", "adapter": name}, headers=ACME)
        assert response.status_code == 200, response.text
        assert response.json()["adapter"] == {"name": name, "version": 1}


def test_upload_step_fails_with_the_gateways_reason_for_a_bad_file(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path, tmp_path: Path
) -> None:
    settings = tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    calls = []
    with open_gateway(settings) as client, pytest.raises(UploadRefused, match="400"):
        upload_adapter("http://testserver", KEYS["acme"], "bad", bad, client=client, sleep=calls.append)
    assert calls == [], "a refusal is not retried"
