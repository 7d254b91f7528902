"""Decoding 12-megapixel phone-size JPEGs: the gateway's CPU per image, and what JPEG draft decoding does to the
embeddings (issue 14, "Image decoding").

Inputs: the real photos bundled in scikit-image's wheel (tests/photos.py), each enlarged to 4032x3024 (a 12 MP phone
photo's size; bicubic) and saved as JPEG quality 92, smooth (~1 MB) and with sensor-like grain (~3 MB, the entropy of
a phone photo, which is what JPEG decoding time depends on), one of them stored sideways (EXIF orientation 6).

  * decode   in-process, the gateway's path (`decoding.decode_image` + `resize_uint8`), process CPU per image
             (median of --repeats), with draft decoding (the default) and without (TIPS_LIMITS__JPEG_DRAFT=false),
             at the served resolutions 224 and 448;
  * request  one stack (redis-server, tritonserver, two gateway processes: draft on / off); each 12 MP JPEG sent
             4 times per gateway (distinct bytes: every request misses the cache) as a multipart upload to
             /v1/embed/image, one at a time; gateway process CPU milliseconds per request, everything included
             (HTTP, multipart, decode, resize, gRPC, cache);
  * effect   the tiny model (PyTorch) on the draft-decoded input vs the reference preprocessing (full decode,
             bilinear resize): max and mean |difference| of L2-normalised CLS1, cosine; and of the resized uint8
             pixels (model-independent).

    python bench/decode.py [--repeats 5] [--out build/bench]      # under flock /tmp/tipsv2-bench.lock
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import Record, arguments, table  # noqa: E402
from bench.stack import Stack, build_model  # noqa: E402

SIZE = (4032, 3024)
QUALITY = 92
COPIES = 4  # requests per JPEG and cell (CPU time is counted in 10 ms ticks: enough requests to resolve it)
RESOLUTIONS = (224, 448)


def phone_jpegs() -> dict[str, bytes]:
    """Each bundled photo at 4032x3024, smooth (upscaled as is: ~1 MB) and grainy (plus Gaussian noise of sigma 4,
    as a phone's sensor leaves: ~3 MB, the entropy that makes JPEG decoding expensive), and one stored sideways."""
    from PIL import Image

    from tests import photos

    rng = np.random.default_rng(0)
    out = {}
    for name in photos.PHOTOS:
        big = np.asarray(Image.fromarray(photos.photo(name)).resize(SIZE, Image.Resampling.BICUBIC))
        grainy = np.clip(big + rng.normal(0, 4, (*big.shape[:2], 1)), 0, 255).astype(np.uint8)
        out[f"{Path(name).stem} smooth"] = _jpeg(Image.fromarray(big))
        out[f"{Path(name).stem} grainy"] = _jpeg(Image.fromarray(grainy))
        if name == "coffee.png":
            out["coffee grainy exif6"] = photos.with_orientation(grainy, 6, "JPEG", quality=QUALITY)
    return out


def _jpeg(image: Any, comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=QUALITY, comment=comment)
    return buffer.getvalue()


def distinct(data: bytes, copies: int) -> list[bytes]:
    """`copies` files that decode to the same pixels but hash differently (a JPEG comment segment after SOI): every
    request misses the cache while the decoding work stays the same."""
    return [
        data[:2] + b"\xff\xfe" + (4 + 2).to_bytes(2, "big") + i.to_bytes(4, "big") + data[2:] for i in range(copies)
    ]


def decode_cpu_ms(data: bytes, resolution: int, draft: bool, repeats: int) -> float:
    from training.tipsv2.decoding import decode_image
    from training.tipsv2.preprocess import resize_uint8

    times = []
    for _ in range(repeats):
        started = time.process_time()
        resize_uint8(decode_image(data, min_size=resolution if draft else None), resolution)
        times.append(time.process_time() - started)
    return round(float(np.median(times)) * 1e3, 2)


def decode_table(jpegs: dict[str, bytes], repeats: int, record: Record) -> list[dict[str, Any]]:
    rows = []
    for name, data in jpegs.items():
        for resolution in RESOLUTIONS:
            row = {
                "photo": name,
                "resolution": resolution,
                "draft_ms": decode_cpu_ms(data, resolution, True, repeats),
                "full_ms": decode_cpu_ms(data, resolution, False, repeats),
            }
            rows.append(record.add({"part": "decode", **row}))
    return rows


def request_table(jpegs: dict[str, bytes], record: Record, workdir: Path) -> list[dict[str, Any]]:
    from PIL import Image

    model = build_model(workdir)
    stack = Stack(model.repository, workdir / "decode-stack", model.tokenizer, workdir / "decode-adapters")
    warm = _jpeg(Image.new("RGB", SIZE))
    rows = []
    with stack, httpx.Client(timeout=120, headers=stack.headers) as client:
        gateways = {
            "draft": stack.gateway_process,
            "full": stack.start_gateway("full", TIPS_LIMITS__JPEG_DRAFT="false"),
        }
        for mode, gateway in gateways.items():
            for resolution in RESOLUTIONS:
                for copy in distinct(warm, 4):  # every worker process's first requests: imports, connections
                    _post(client, gateway.url, copy, resolution)
                for kind in ("smooth", "grainy"):
                    files = [f for name, data in jpegs.items() if kind in name for f in distinct(data, COPIES)]
                    before = stack.cpu_seconds()["gateway"]  # all gateway processes; one is sent requests at a time
                    for data in files:
                        _post(client, gateway.url, data, resolution)
                    spent = stack.cpu_seconds()["gateway"] - before
                    row = {"mode": mode, "photos": kind, "resolution": resolution, "requests": len(files)}
                    row["gateway_cpu_ms"] = round(spent * 1e3 / len(files), 1)
                    row["mb_per_file"] = round(float(np.mean([len(f) for f in files])) / 1e6, 2)
                    rows.append(record.add({"part": "request", **row}))
    return rows


def _post(client: httpx.Client, url: str, data: bytes, resolution: int) -> None:
    response = client.post(
        f"{url}/v1/embed/image",
        files=[("images", ("photo.jpg", data, "image/jpeg"))],
        data={"resolution": str(resolution)},
    )
    response.raise_for_status()


def effect_table(jpegs: dict[str, bytes], record: Record, workdir: Path) -> list[dict[str, Any]]:
    import torch

    from training.tipsv2.checkpoint import load_pretrained
    from training.tipsv2.decoding import decode_image
    from training.tipsv2.preprocess import resize_uint8, to_model_input

    model = load_pretrained(build_model(workdir).weights, "tipsv2-tiny").eval()
    rows = []
    for name, data in jpegs.items():
        reference = decode_image(data)  # full decode; orientation applied (the reference for upright pixels)
        for resolution in RESOLUTIONS:
            want_pixels = resize_uint8(reference, resolution)
            got_pixels = resize_uint8(decode_image(data, min_size=resolution), resolution)
            with torch.no_grad():
                batch = torch.from_numpy(to_model_input(np.stack([want_pixels, got_pixels])))
                cls1 = torch.nn.functional.normalize(model.encode_image(batch).cls1, dim=-1).numpy()
            delta = np.abs(cls1[1] - cls1[0])
            pixel = np.abs(got_pixels.astype(np.int16) - want_pixels.astype(np.int16))
            row = {
                "photo": name,
                "resolution": resolution,
                "emb_max": f"{delta.max():.1e}",
                "emb_mean": f"{delta.mean():.1e}",
                "one_minus_cosine": f"{1 - float(cls1[0] @ cls1[1]):.1e}",
                "pixel_max": int(pixel.max()),
                "pixel_mean": round(float(pixel.mean()), 3),
            }
            rows.append(record.add({"part": "effect", **row}))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    record = Record("decode", args.out, sys.argv)
    jpegs = phone_jpegs()
    sizes = ", ".join(f"{name} {len(data) / 1e6:.1f} MB" for name, data in jpegs.items())
    print(f"{len(jpegs)} JPEGs of {SIZE[0]}x{SIZE[1]} (quality {QUALITY}): {sizes}")
    from training.tipsv2.decoding import decode_image

    assert all(decode_image(f).size in (SIZE, SIZE[::-1]) for f in distinct(jpegs["rocket smooth"], 2))
    decoded = decode_table(jpegs, args.repeats, record)
    print(table(decoded, [("photo", "photo"), ("resolution", "R"), ("draft_ms", "draft CPU ms"), ("full_ms", "full")]))
    effect = effect_table(jpegs, record, args.workdir)
    columns = [("photo", "photo"), ("resolution", "R"), ("emb_max", "max |dCLS1|"), ("emb_mean", "mean |dCLS1|")]
    columns += [("one_minus_cosine", "1 - cosine"), ("pixel_max", "max |dpixel|"), ("pixel_mean", "mean |dpixel|")]
    print(table(effect, columns))
    requests = request_table(jpegs, record, args.workdir)
    cols = [("mode", "decode"), ("photos", "photos"), ("mb_per_file", "MB"), ("resolution", "R")]
    cols += [("requests", "requests"), ("gateway_cpu_ms", "gateway CPU ms/request")]
    print(table(requests, cols))
    print(f"wrote {record.write()}")


if __name__ == "__main__":
    main()
