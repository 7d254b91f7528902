"""Both trunks export to ONNX with named tensors and dynamic axes, and the export proves parity with PyTorch."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.export.onnx_export import (
    ParityError,
    SignatureError,
    check_image_parity,
    check_signature,
    check_text_parity,
    export_image_trunk,
    export_text_trunk,
    graph_signature,
)
from training.tipsv2.model import create_model


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("onnx")
    return export_text_trunk(tiny_model, folder / "text.onnx"), export_image_trunk(tiny_model, folder / "image.onnx")


def test_trunks_have_named_inputs_and_outputs_with_symbolic_batch_and_sequence_axes(exported) -> None:  # type: ignore[no-untyped-def]
    text, image = exported
    assert graph_signature(text) == {
        "embeddings": ["batch", 64, 64],
        "token_mask": ["batch", 64],
        "text_embedding": ["batch", 64],
    }
    image_sig = graph_signature(image)
    assert image_sig["tokens"] == ["batch", "seq", 64]
    assert list(image_sig) == ["tokens", "cls1", "cls2", "patch_tokens", "dense_tokens"]
    assert all(isinstance(dims[0], str) for dims in image_sig.values())


@pytest.mark.parametrize("batch", [1, 5])
def test_text_trunk_matches_pytorch_at_batch_sizes_other_than_the_traced_one(tiny_model, exported, batch: int) -> None:  # type: ignore[no-untyped-def]
    assert check_text_parity(tiny_model, exported[0], 1e-4, batch=batch).max_abs_diff <= 1e-4


@pytest.mark.parametrize(("grid", "batch"), [(16, 1), (8, 3), (4, 2)])
def test_image_trunk_matches_pytorch_at_every_resolution(tiny_model, exported, grid: int, batch: int) -> None:  # type: ignore[no-untyped-def]
    assert check_image_parity(tiny_model, exported[1], 1e-4, batch=batch, grid=grid).max_abs_diff <= 1e-4


def test_parity_check_fails_loudly_for_a_graph_of_other_weights(exported) -> None:  # type: ignore[no-untyped-def]
    other = create_model("tipsv2-tiny", seed=123).eval()
    with pytest.raises(ParityError, match="differs from PyTorch"):
        check_text_parity(other, exported[0], 1e-4)


def test_signature_check_refuses_unexpected_names_or_fixed_axes(exported) -> None:  # type: ignore[no-untyped-def]
    text, _ = exported
    with pytest.raises(SignatureError, match="graph has inputs"):
        check_signature(text, ("ids",), ("text_embedding",), {"ids": {0}})
    with pytest.raises(SignatureError, match="axis 1"):
        check_signature(
            text, ("embeddings", "token_mask"), ("text_embedding",), {"embeddings": {0, 1}, "token_mask": {0}}
        )
