"""Property-based bad input: schemathesis generates requests from the gateway's own OpenAPI document, for every
operation, both inside the schema (positive) and outside it (negative), against a real gateway process wired to the
real Triton and Redis. Whatever comes, the gateway answers without a 5xx, and every error in the one JSON shape.

Bounded and reproducible: EXAMPLES per operation and mode, derandomized, no shrinking (a failure is reported as
generated)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode

from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import ACME, tenant_settings
from tests.reliability.processes import GatewayServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EXAMPLES = 25
ERROR_FIELDS = {"type", "code", "message", "param"}


@pytest.fixture(scope="module")
def gateway(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path, tmp_path_factory
) -> Iterator[GatewayServer]:
    settings = tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)
    with GatewayServer(settings, tmp_path_factory.mktemp("schemathesis")) as server:
        yield server


@pytest.fixture(scope="module")
def schema(gateway: GatewayServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{gateway.url}/openapi.json")


def cases() -> list[tuple[str, GenerationMode]]:
    """(operation, mode) for every operation of the document, read from the app itself so that a new endpoint is
    fuzzed without an edit here. Negative data needs something to violate: a body, a path or a query parameter
    (header parameters do not count: the key is always sent)."""
    from service.gateway.app import create_app
    from service.gateway.core.config import Settings

    document = create_app(Settings()).openapi()
    out = []
    for path, item in document["paths"].items():
        for method, spec in item.items():
            operation = f"{method.upper()} {path}"
            out.append((operation, GenerationMode.POSITIVE))
            if "requestBody" in spec or any(p["in"] in ("path", "query") for p in spec.get("parameters", [])):
                out.append((operation, GenerationMode.NEGATIVE))
    return sorted(out)


def error_problem(response: requests.Response) -> str | None:
    """What is wrong with a response, or None: no 5xx, and every 4xx in the gateway's one error body."""
    if response.status_code >= 500:
        return f"server error {response.status_code}: {response.text[:300]}"
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} without a JSON body: {response.text[:200]}"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(error) != ERROR_FIELDS or set(body) != {"error"}:
        return f"{response.status_code} not in the error shape: {json.dumps(body)[:300]}"
    if not (isinstance(error["message"], str) and error["message"] and isinstance(error["code"], str)):
        return f"{response.status_code} with an empty message or code: {error}"
    return None


@pytest.mark.parametrize(("operation", "mode"), cases(), ids=[f"{o} {m.value}" for o, m in cases()])
def test_generated_requests_get_no_5xx_and_errors_in_one_shape(
    schema: schemathesis.BaseSchema, gateway: GatewayServer, operation: str, mode: GenerationMode
) -> None:
    method, path = operation.split(" ", 1)
    api_operation = schema[path][method]
    session = requests.Session()
    problems: list[str] = []
    statuses: dict[int, int] = {}

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples on every run: CI stays reproducible; vary by editing EXAMPLES
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=api_operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        # The key comes last: a generated Authorization header must not decide whether the request is checked.
        response = case.call(base_url=gateway.url, session=session, headers=ACME, timeout=30)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        problem = error_problem(response)
        if problem:
            problems.append(f"{case.method} {case.formatted_path} -> {problem}")

    started = time.monotonic()
    run()
    print(f"{operation} {mode.value}: {dict(sorted(statuses.items()))} in {time.monotonic() - started:.1f} s")
    assert statuses and 401 not in statuses, "the generated requests must reach past authentication"
    assert not problems, "\n".join(problems[:5])
