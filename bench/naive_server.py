"""The naive alternative: the same model served the way one would without a serving stack.

Hugging Face transformers' `Tipsv2Model` (an independent implementation; `tests/unit/training/tipsv2/test_hf_parity`
checks it agrees with ours), loaded with our weights converted by `training.tipsv2.hf_convert`, behind a minimal
FastAPI app run by uvicorn with one worker. Each request is handled as it arrives, one at a time: a lock around the
model call (torch with its default threads), no batching across requests, no cache. It accepts the same JSON bodies
as our gateway's `/v1/embeddings` and `/v1/embed/image` and answers with float lists, so one load generator drives
both with identical requests. Tokenizing and image decoding/resizing use the same functions as our gateway.

    python bench/naive_server.py --weights build/bench/work/weights --port 8090
"""

from __future__ import annotations

import argparse
import base64
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI
from pydantic import BaseModel

VARIANT = "tipsv2-tiny"


class TextRequest(BaseModel):
    input: str | list[str]


class ImageRequest(BaseModel):
    images: list[str]
    resolution: int | None = None


def load_model(weights: Path) -> tuple[Any, Any]:
    """`Tipsv2Model` with our (official-layout) weights, and our tokenizer."""
    from transformers import Tipsv2Config, Tipsv2Model

    from training.tipsv2.checkpoint import load_pretrained
    from training.tipsv2.hf_convert import hf_config_kwargs, to_hf_state_dict
    from training.tipsv2.tokenizer import Tokenizer

    ours = load_pretrained(weights, VARIANT)
    model = Tipsv2Model(Tipsv2Config(**hf_config_kwargs(ours.cfg))).eval()
    model.load_state_dict(to_hf_state_dict(ours), strict=True)
    return model, Tokenizer(weights / "tokenizer.model")


def create_app(weights: Path) -> FastAPI:
    from training.tipsv2.decoding import decode_image
    from training.tipsv2.preprocess import resize_uint8

    model, tokenizer = load_model(weights)
    default_resolution = model.config.vision_config.image_size
    lock = threading.Lock()  # one model call at a time
    app = FastAPI(title="naive TIPSv2 (transformers)")

    def normalized(vectors: torch.Tensor) -> list[list[float]]:
        return torch.nn.functional.normalize(vectors, dim=-1).tolist()  # type: ignore[no-any-return]

    @app.post("/v1/embeddings")
    def embeddings(body: TextRequest) -> dict[str, Any]:
        texts = [body.input] if isinstance(body.input, str) else body.input
        ids, _ = tokenizer(texts)
        ids_t = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        with lock, torch.inference_mode():
            pooled = model.get_text_features(input_ids=ids_t, attention_mask=(ids_t != 0).long()).pooler_output
        return {"data": [{"index": i, "embedding": v} for i, v in enumerate(normalized(pooled))]}

    @app.post("/v1/embed/image")
    def images(body: ImageRequest) -> dict[str, Any]:
        size = body.resolution or default_resolution
        pixels = np.stack([resize_uint8(decode_image(base64.b64decode(b)), size) for b in body.images])
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
        with lock, torch.inference_mode():
            sequence = model.get_image_features(pixel_values=x).last_hidden_state
        cls1, cls2 = normalized(sequence[:, 0]), normalized(sequence[:, 1])
        pairs = enumerate(zip(cls1, cls2, strict=True))
        data = [{"index": i, "embedding": a, "embedding_cls2": b} for i, (a, b) in pairs]
        return {"data": data, "resolution": size}

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.weights), host="127.0.0.1", port=args.port, workers=1, log_level="warning", access_log=False
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
