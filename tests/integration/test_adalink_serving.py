"""An adapter trained by `tipsv2 adapt` serves through the real tritonserver with exactly the outputs of the
training-side model (`training.adalink.adapted.AdaptedTIPSv2`): the base hash it carries is the served model_id,
and training and serving put the adapter in the same place (text: every position; image: all tokens, both CLS)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import tritonclient.grpc as grpcclient

from service.tools.cli.main import main
from service.tools.local.tritonserver import TritonServer
from tests.conftest import TINY
from training.adalink.adapted import AdaptedTIPSv2
from training.contracts.adapter_file import validate_adapter
from training.contracts.served import IMAGE_MODEL, TEXT_MODEL
from training.data.domain_shift import generate_survey_dataset
from training.tipsv2.checkpoint import load_pretrained
from training.tipsv2.tokenizer import Tokenizer

pytestmark = pytest.mark.integration
TENANT = "adalink-trained"


def served_model_id(client: grpcclient.InferenceServerClient) -> str:
    config = client.get_model_config(TEXT_MODEL, as_json=True)["config"]
    return str(config["parameters"]["model_id"]["string_value"])


def adapter_tensor(adapter_id: str, rows: int) -> grpcclient.InferInput:
    array = np.array([adapter_id.encode()] * rows, dtype=object).reshape(-1, 1)
    tensor = grpcclient.InferInput("adapter", list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


@pytest.fixture(scope="module")
def trained_adapter(tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("adalink_serving")
    generate_survey_dataset(root / "train", 16, image_size=56)
    task = root / "task.yaml"
    task.write_text(
        f"name: served\nkind: classification\ndata: {{train: {root / 'train'}}}\n"
        "templates: ['a photo of a {}.']\nadapter: {modalities: [image, text], rank: 4, activation: gelu_tanh}\n"
        "optim: {steps: 5, batch_size: 8, warmup_steps: 1, lr: 0.05}\n"
    )
    out = root / "served.safetensors"
    assert main(["adapt", "--base", str(tiny_weights), "--task", str(task), "--out", str(out), "--threads", "1"]) == 0
    return out.read_bytes()


def test_adapter_from_tipsv2_adapt_serves_with_the_training_side_outputs(
    triton: TritonServer, adapter_store: Path, tiny_weights: Path, trained_adapter: bytes, tokenizer_path: Path
) -> None:
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{triton.grpc_port}")
    validate_adapter(trained_adapter, base_hash=served_model_id(client))  # trained for exactly the served model
    digest = hashlib.sha256(trained_adapter).hexdigest()[:16]
    (adapter_store / TENANT / "survey").mkdir(parents=True, exist_ok=True)
    (adapter_store / TENANT / "survey" / f"v1-{digest}.safetensors").write_bytes(trained_adapter)
    adapter_id = f"{TENANT}/survey/1/{digest}"
    model = AdaptedTIPSv2.from_adapter_file(load_pretrained(tiny_weights, TINY), trained_adapter)
    ids, _ = Tokenizer(tokenizer_path)(["a photo of a sward.", "a survey tile of loch with a large ring."])
    text = grpcclient.InferInput("input_ids", list(ids.shape), "INT32")
    text.set_data_from_numpy(ids)
    served_text = client.infer(TEXT_MODEL, [text, adapter_tensor(adapter_id, 2)]).as_numpy("text_embedding")

    pixels = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    image = grpcclient.InferInput("pixels", list(pixels.shape), "UINT8")
    image.set_data_from_numpy(pixels)
    outputs = [grpcclient.InferRequestedOutput(n) for n in ("cls1", "cls2", "patch_tokens")]
    served_image = client.infer(IMAGE_MODEL, [image, adapter_tensor(adapter_id, 2)], outputs=outputs)

    with torch.no_grad():
        want_text = model.encode_text(torch.from_numpy(ids).long()).numpy()
        want_image = model.encode_image(torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255)
        base_text = model.base.encode_text(torch.from_numpy(ids).long()).numpy()
    assert np.abs(served_text - want_text).max() <= 1e-4
    assert np.abs(served_text - base_text).max() > 1e-3  # the trained adapter does change the output
    for name in ("cls1", "cls2", "patch_tokens"):
        assert np.abs(served_image.as_numpy(name) - getattr(want_image, name).numpy()).max() <= 1e-4, name
