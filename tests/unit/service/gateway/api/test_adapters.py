"""`/v1/adapters` with the fake backend: upload (multipart or raw), list, show, activate, delete, per tenant."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.unit.service.gateway.adapters.files import fake_adapter
from tests.unit.service.gateway.conftest import ACME, GLOBEX


def upload(api: TestClient, name: str, data: bytes, headers: dict[str, str] = ACME, **form: str):  # type: ignore[no-untyped-def]
    return api.post(
        "/v1/adapters", files={"file": ("a.safetensors", data)}, data={"name": name, **form}, headers=headers
    )


def test_multipart_and_raw_uploads_create_versions(tenants_api: TestClient) -> None:
    first = upload(tenants_api, "shop", fake_adapter(1))
    assert first.status_code == 201
    body = first.json()
    assert (body["uploaded_version"], body["active_version"]) == (1, 1)
    version = body["versions"][0]
    assert (
        version["modalities"] == ["image", "text"] and version["rank"] == 4 and version["base_model"] == "tipsv2-fake"
    )
    raw = tenants_api.post(
        "/v1/adapters?name=shop&activate=false",
        content=fake_adapter(2),
        headers={**ACME, "Content-Type": "application/octet-stream"},
    )
    assert raw.status_code == 201 and raw.json()["uploaded_version"] == 2 and raw.json()["active_version"] == 1


def test_form_activate_false_keeps_the_active_version(tenants_api: TestClient) -> None:
    upload(tenants_api, "shop", fake_adapter(1))
    assert upload(tenants_api, "shop", fake_adapter(2), activate="false").json()["active_version"] == 1


def test_requests_echo_the_resolved_version(tenants_api: TestClient) -> None:
    upload(tenants_api, "shop", fake_adapter(1))
    upload(tenants_api, "shop", fake_adapter(2))
    base = tenants_api.post("/v1/embeddings", json={"input": "x"}, headers=ACME).json()
    active = tenants_api.post("/v1/embeddings", json={"input": "x", "adapter": "shop"}, headers=ACME).json()
    pinned = tenants_api.post("/v1/embeddings", json={"input": "x", "adapter": "shop@1"}, headers=ACME).json()
    assert base["adapter"] is None and active["adapter"] == {"name": "shop", "version": 2}
    assert pinned["adapter"] == {"name": "shop", "version": 1}
    assert len({str(b["data"][0]["embedding"]) for b in (base, active, pinned)}) == 3


def test_activation_is_used_by_the_next_request(tenants_api: TestClient) -> None:
    upload(tenants_api, "shop", fake_adapter(1))
    upload(tenants_api, "shop", fake_adapter(2))
    assert (
        tenants_api.post("/v1/adapters/shop/activate", json={"version": 1}, headers=ACME).json()["active_version"] == 1
    )
    used = tenants_api.post("/v1/embeddings", json={"input": "x", "adapter": "shop"}, headers=ACME).json()["adapter"]
    assert used == {"name": "shop", "version": 1}


def test_list_show_and_delete(tenants_api: TestClient) -> None:
    upload(tenants_api, "b-adapter", fake_adapter(1))
    upload(tenants_api, "a-adapter", fake_adapter(2))
    listed = tenants_api.get("/v1/adapters", headers=ACME).json()
    assert [a["name"] for a in listed["data"]] == ["a-adapter", "b-adapter"]
    assert tenants_api.get("/v1/adapters/a-adapter", headers=ACME).json()["versions"][0]["active"]
    deleted = tenants_api.delete("/v1/adapters/a-adapter", headers=ACME).json()
    assert deleted == {
        "object": "adapter.deleted",
        "name": "a-adapter",
        "deleted_versions": [1],
        "adapter_deleted": True,
    }
    assert tenants_api.get("/v1/adapters/a-adapter", headers=ACME).status_code == 404


def test_list_pages_with_limit_and_after_until_has_more_is_false(tenants_api: TestClient) -> None:
    for index, name in enumerate(("c-adapter", "a-adapter", "b-adapter")):
        upload(tenants_api, name, fake_adapter(index + 1))
    first = tenants_api.get("/v1/adapters?limit=2", headers=ACME).json()
    assert [a["name"] for a in first["data"]] == ["a-adapter", "b-adapter"] and first["has_more"] is True
    last = tenants_api.get("/v1/adapters?limit=2&after=b-adapter", headers=ACME).json()
    assert [a["name"] for a in last["data"]] == ["c-adapter"] and last["has_more"] is False
    everything = tenants_api.get("/v1/adapters", headers=ACME).json()
    assert len(everything["data"]) == 3 and everything["has_more"] is False
    refused = [tenants_api.get(f"/v1/adapters?{q}", headers=ACME) for q in ("limit=0", "limit=1001", "after=..")]
    assert [r.status_code for r in refused] == [422, 422, 422]


def test_other_tenants_get_404_for_everything(tenants_api: TestClient) -> None:
    upload(tenants_api, "shop", fake_adapter(1))
    calls = [
        tenants_api.get("/v1/adapters/shop", headers=GLOBEX),
        tenants_api.delete("/v1/adapters/shop", headers=GLOBEX),
        tenants_api.post("/v1/adapters/shop/activate", json={"version": 1}, headers=GLOBEX),
        tenants_api.post("/v1/embeddings", json={"input": "x", "adapter": "shop"}, headers=GLOBEX),
    ]
    assert [c.status_code for c in calls] == [404] * 4
    assert tenants_api.get("/v1/adapters", headers=GLOBEX).json()["data"] == []


def test_uploads_for_another_model_are_refused(tenants_api: TestClient) -> None:
    response = upload(tenants_api, "shop", fake_adapter(1, base_hash="f" * 16))
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_adapter"
    assert "base model" in response.json()["error"]["message"]


def test_without_a_store_uploads_are_503_and_lists_empty(api: TestClient) -> None:
    response = api.post(
        "/v1/adapters",
        files={"file": ("a", fake_adapter())},
        data={"name": "shop"},
        headers={"Authorization": "Bearer unit-test-key"},
    )
    assert response.status_code == 503 and response.json()["error"]["code"] == "adapter_store_not_configured"
    assert api.get("/v1/adapters", headers={"Authorization": "Bearer unit-test-key"}).json()["data"] == []


def test_activating_an_unknown_version_is_404(tenants_api: TestClient) -> None:
    upload(tenants_api, "shop", fake_adapter(1))
    response = tenants_api.post("/v1/adapters/shop/activate", json={"version": 5}, headers=ACME)
    assert response.status_code == 404 and response.json()["error"]["code"] == "adapter_version_not_found"
