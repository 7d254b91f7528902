"""The upload step's retry policy, against a scripted transport: transient answers are retried, refusals are not.
(The upload itself against the real gateway is in tests/deploy/test_adapter_upload_step.py.)"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.tools.jobs.upload import UploadRefused, upload_adapter


def scripted(statuses: list[int], seen: list[httpx.Request]) -> httpx.Client:
    answers = iter(statuses)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = next(answers)
        body = {"name": "retail", "uploaded_version": 3} if status == 201 else {"error": {"message": "nope"}}
        return httpx.Response(status, json=body)

    return httpx.Client(base_url="http://gateway", transport=httpx.MockTransport(handle))


def test_transient_answers_are_retried_until_the_upload_is_accepted(tmp_path: Path) -> None:
    file = tmp_path / "retail.safetensors"
    file.write_bytes(b"adapter bytes")
    seen: list[httpx.Request] = []
    answer = upload_adapter(
        "http://gateway", "key", "retail", file, client=scripted([503, 429, 201], seen), sleep=lambda _: None
    )
    assert answer["uploaded_version"] == 3 and len(seen) == 3
    assert seen[-1].headers["Authorization"] == "Bearer key"
    assert b'name="name"\r\n\r\nretail' in seen[-1].content and b"adapter bytes" in seen[-1].content


def test_a_refusal_fails_at_once_with_the_gateways_message(tmp_path: Path) -> None:
    file = tmp_path / "bad.safetensors"
    file.write_bytes(b"not an adapter")
    seen: list[httpx.Request] = []
    with pytest.raises(UploadRefused, match=r"400.*nope"):
        upload_adapter("http://gateway", "key", "retail", file, client=scripted([400], seen), sleep=lambda _: None)
    assert len(seen) == 1
