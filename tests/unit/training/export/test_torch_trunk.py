"""The torch trunks (runtime torch) rebuild the towers strictly and answer like the model, in float32 and bfloat16."""

from __future__ import annotations

import json

import pytest
import torch

from training.export.torch_trunk import CONFIG_FILE, WEIGHTS_FILE, load_torch_trunk, save_torch_trunk


def test_text_trunk_equals_the_model(tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    trunk = load_torch_trunk(save_torch_trunk(tiny_model, "text", tmp_path / "text"))
    ids = torch.randint(2, 1000, (3, 64))
    ids[1, 10:] = 0
    with torch.no_grad():
        x, mask = tiny_model.text.embed(ids), tiny_model.text.token_mask(ids)
        want = tiny_model.text.trunk(x, mask)
    got = trunk({"embeddings": x, "token_mask": mask})
    assert set(got) == {"text_embedding"} and got["text_embedding"].dtype == torch.float32
    assert (got["text_embedding"] - want).abs().max() <= 1e-5


def test_image_trunk_returns_requested_outputs_only_and_equals_the_model(tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    trunk = load_torch_trunk(save_torch_trunk(tiny_model, "image", tmp_path / "image"))
    with torch.no_grad():
        tokens = tiny_model.visual.embed(torch.rand(2, 3, 112, 112))
        out, dense = tiny_model.visual.trunk_with_dense(tokens)
    cls_only = trunk({"tokens": tokens}, ["cls1"])
    assert list(cls_only) == ["cls1"] and (cls_only["cls1"] - out[:, 0]).abs().max() <= 1e-5
    everything = trunk({"tokens": tokens})
    assert (everything["patch_tokens"] - out[:, 2:]).abs().max() <= 1e-5
    assert (everything["dense_tokens"] - dense[:, 2:]).abs().max() <= 1e-5


def test_bfloat16_compute_keeps_float32_outputs_close_to_the_model(tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    trunk = load_torch_trunk(save_torch_trunk(tiny_model, "image", tmp_path / "image"), dtype="bfloat16")
    with torch.no_grad():
        tokens = tiny_model.visual.embed(torch.rand(2, 3, 112, 112))
        want = tiny_model.visual.trunk(tokens)[:, 0]
    got = trunk({"tokens": tokens}, ["cls1"])["cls1"]
    assert got.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(got, want).min() > 0.99


def test_loading_is_strict_about_the_weights(tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = save_torch_trunk(tiny_model, "text", tmp_path / "text")
    assert {p.name for p in folder.iterdir()} == {WEIGHTS_FILE, CONFIG_FILE}
    spec = json.loads((folder / CONFIG_FILE).read_text())
    spec["model_config"]["text_cfg"]["depth"] = 3  # a block the weights do not have
    (folder / CONFIG_FILE).write_text(json.dumps(spec))
    with pytest.raises(RuntimeError, match="Missing key"):
        load_torch_trunk(folder)
    with pytest.raises(ValueError, match="unknown dtype"):
        load_torch_trunk(save_torch_trunk(tiny_model, "text", tmp_path / "ok"), dtype="float8")


def test_a_trunk_whose_compiler_fails_serves_eager_and_says_why(tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    def broken_backend(graph, example_inputs):  # type: ignore[no-untyped-def]
        raise RuntimeError("no compiler here")

    folder = save_torch_trunk(tiny_model, "text", tmp_path / "text")
    unknown = load_torch_trunk(folder, compile_mode="default", compile_backend="no-such-backend")
    assert not unknown.compiled and "no-such-backend" in unknown.compile_error
    failing = load_torch_trunk(folder, compile_mode="default", compile_backend=broken_backend, buckets=(2,))  # type: ignore[arg-type]
    ids = torch.randint(2, 1000, (2, 64))
    with torch.no_grad():
        x, mask = tiny_model.text.embed(ids), tiny_model.text.token_mask(ids)
        want = tiny_model.text.trunk(x, mask)
    assert failing.compiled
    failing.warm([{"embeddings": x, "token_mask": mask}])
    assert not failing.compiled and "no compiler here" in failing.compile_error
    assert (failing({"embeddings": x, "token_mask": mask})["text_embedding"] - want).abs().max() <= 1e-5
