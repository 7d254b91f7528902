"""The HTTP benchmarks' request plans: what each cell sends is what it says (distinct or repeated bodies, adapters
in rotation, the same requests for both servers of a comparison) and splitting a cell over processes loses nothing."""

from __future__ import annotations

import base64
import io
import json

from PIL import Image

from bench.bodies import Bodies, build_bodies
from bench.httpload import HttpCell, _split, raw_request, summarize
from bench.report import table


def test_unique_bodies_differ_and_repeat_exactly_for_the_same_seed_and_share() -> None:
    spec = Bodies("text", per_request=2, words=5, seed=3)
    first, again, other_share = build_bodies(spec, 50), build_bodies(spec, 50), build_bodies(spec, 50, share=1)
    assert first == again  # ours and the naive server are sent identical requests
    assert len(set(first)) == 50 and not set(first) & set(other_share)  # no cache hit across requests or processes
    texts = json.loads(first[0])["input"]
    assert len(texts) == 2 and all(len(t.split()) == 5 for t in texts)


def test_pooled_bodies_repeat_round_robin_for_the_cache_hit_path() -> None:
    bodies = build_bodies(Bodies("text", unique=False, pool=4), 12)
    assert len(set(bodies)) == 4 and bodies[:4] == bodies[4:8] == bodies[8:]


def test_bodies_name_adapters_in_rotation_and_carry_extra_fields() -> None:
    spec = Bodies("image", image_size=(32, 24), adapters=("a", "", "b"), fields={"resolution": 448})
    bodies = [json.loads(b) for b in build_bodies(spec, 6)]
    assert [b.get("adapter") for b in bodies] == ["a", None, "b", "a", None, "b"]
    assert all(b["resolution"] == 448 for b in bodies)
    image = Image.open(io.BytesIO(base64.b64decode(bodies[0]["images"][0])))
    assert image.format == "JPEG" and image.size == (32, 24)


def test_splitting_a_cell_over_processes_keeps_every_request_and_client() -> None:
    cell = HttpCell("c", "/v1/embeddings", Bodies("text"), concurrency=7, requests=101, warmup=8)
    shares = _split(cell, 3)
    assert sum(s.concurrency for s in shares) == 7 and sum(s.requests for s in shares) == 101
    assert shares[0].warmup == 8  # the first share warms the server; the others only their connections
    assert len(_split(cell, 50)) == 7  # never more processes than clients


def test_raw_request_is_a_complete_http_11_message() -> None:
    raw = raw_request("POST", "127.0.0.1:8080", "/v1/embeddings", {"Authorization": "Bearer k"}, b'{"input": "x"}')
    head, body = raw.split(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/embeddings HTTP/1.1\r\n") and b"Content-Length: 14" in head
    assert b"Authorization: Bearer k" in head and body == b'{"input": "x"}'


def test_percentiles_and_tables_report_what_was_measured() -> None:
    assert summarize([1.0, 2.0, 3.0, 100.0]) == {"p50_ms": 2.5, "p99_ms": 97.09, "mean_ms": 26.5}
    assert summarize([])["p50_ms"] == 0.0  # nothing came back: the errors column says why
    text = table([{"a": 1234.5, "b": "x"}], [("a", "req/s"), ("b", "cell")])
    assert text.splitlines()[2].split() == ["1,234", "x"]
