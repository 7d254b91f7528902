"""The fused forward (embedding layer + adapter bank + trunk in one call) equals plain PyTorch, computes only the
outputs asked for, and keeps one request's failure to itself. CPU torch here; the same code runs on a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from service.triton.models.tipsv2_fused_torch import FusedForward, HostArena, Item
from training.adalink.module import ACTIVATIONS as ACTIVATIONS_TORCH
from training.adalink.samples import random_part, store_adapter
from training.export.embed_stage import image_embed_arrays, save_arrays, text_embed_arrays
from training.export.torch_trunk import save_torch_trunk

D = 64  # tipsv2-tiny
BASE = "fused-test-base"
ACT = ACTIVATIONS_TORCH  # what training's AdaLink module computes: the reference


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:  # type: ignore[type-arg]
    """Nine adapters of mixed ranks and activations, both modalities."""
    store = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(3)
    made = {}
    for i, rank in enumerate((1, 2, 4, 8, 16, 3, 5, 7, 12)):
        activation = tuple(ACT)[i % 4]
        parts = {
            "text": random_part(rng, D, rank, down_scale=0.5 / D**0.5, up_scale=0.5),
            "image": random_part(rng, D, rank, down_scale=0.5 / D**0.5, up_scale=0.5),
        }
        made[store_adapter(store, "acme", f"f{i}", 1, parts, BASE, activation=activation)] = {
            **parts,
            "activation": activation,
        }
    return store, made


def folder(model, modality: str, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A fused model's version folder, as the repository generator writes it."""
    save_torch_trunk(model, modality, path)  # type: ignore[arg-type]
    arrays = text_embed_arrays(model) if modality == "text" else image_embed_arrays(model, [16, 8])
    save_arrays(arrays, path / "embed.safetensors")
    return path


@pytest.fixture(scope="module")
def text_dir(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    return folder(tiny_model, "text", tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="module")
def image_dir(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    return folder(tiny_model, "image", tmp_path_factory.mktemp("image"))


def load(directory: Path, modality: str, store: Path, **compile_args: object) -> FusedForward:
    return FusedForward.load(modality, str(directory), "cpu", "float32", str(store), BASE, 16, **compile_args)  # type: ignore[arg-type]


def adapt(x: torch.Tensor, rows: list[dict | None], modality: str) -> torch.Tensor:  # type: ignore[type-arg]
    out = []
    for row, adapter in zip(x, rows, strict=True):
        if adapter is None:
            out.append(row)
            continue
        down, up = (torch.from_numpy(a) for a in adapter[modality])
        out.append(row + ACT[adapter["activation"]](row @ down.T) @ up.T)
    return torch.stack(out)


def reference_image(model, pixels: np.ndarray, rows: list[dict | None]) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def, type-arg]
    with torch.no_grad():
        x = adapt(model.visual.embed(torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255), rows, "image")
        out, dense = model.visual.trunk_with_dense(x)
    return {"cls1": out[:, 0], "cls2": out[:, 1], "patch_tokens": out[:, 2:], "dense_tokens": dense[:, 2:]}


def pixels(rows: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (rows, size, size, 3), dtype=np.uint8)


def test_text_with_mixed_adapters_equals_plain_pytorch(tiny_model, text_dir: Path, adapters) -> None:  # type: ignore[no-untyped-def]
    store, made = adapters
    ids = np.zeros((10, 64), np.int32)
    ids[:, :12] = np.random.default_rng(0).integers(2, 1000, (10, 12))
    names = [*made, ""]
    fused = load(text_dir, "text", store)
    items = [
        Item(torch.from_numpy(ids[:4]), names[:4], ("text_embedding",)),
        Item(torch.from_numpy(ids[4:]), names[4:], ()),
    ]
    results, errors = fused.run(items)
    got = torch.cat([results[0]["text_embedding"], results[1].get("text_embedding", torch.empty(0, D))])
    with torch.no_grad():
        ids_t = torch.from_numpy(ids).long()
        x = adapt(tiny_model.text.embed(ids_t), [made.get(n) for n in names], "text")
        want = tiny_model.text.trunk(x, tiny_model.text.token_mask(ids_t))
    assert errors == {} and list(results[1]) == []  # an item asking for nothing gets nothing
    assert (got[:4] - want[:4]).abs().max() <= 1e-4
    assert fused.counters.adapted_rows == 9 and fused.counters.output_rows["text_embedding"] == 4


def test_image_computes_only_what_each_request_asked_for(tiny_model, image_dir: Path, adapters) -> None:  # type: ignore[no-untyped-def]
    store, made = adapters
    names = list(made)
    fused = load(image_dir, "image", store)
    small, large = pixels(3, 112, 1), pixels(2, 224, 2)
    cls_only = [
        Item(torch.from_numpy(small), names[:3], ("cls1",)),
        Item(torch.from_numpy(large), ["", names[3]], ("cls1",)),
    ]
    results, errors = fused.run(cls_only)
    assert errors == {} and [list(r) for r in results] == [["cls1"], ["cls1"]]
    assert fused.counters.dense_passes == 0 and fused.counters.dense_rows == 0
    assert dict(fused.counters.output_rows) == {"cls1": 5}  # no patch or dense token was copied anywhere
    want_small = reference_image(tiny_model, small, [made[n] for n in names[:3]])
    assert (results[0]["cls1"] - want_small["cls1"]).abs().max() <= 1e-4

    # one batch of three requests: dense tokens for the middle one only, patch tokens for the last
    mixed = [
        Item(torch.from_numpy(small[:1]), [names[0]], ("cls1",)),
        Item(torch.from_numpy(small[1:2]), [""], ("cls2", "dense_tokens")),
        Item(torch.from_numpy(small[2:]), [names[2]], ("patch_tokens",)),
    ]
    results, errors = fused.run(mixed)
    assert errors == {} and [sorted(r) for r in results] == [["cls1"], ["cls2", "dense_tokens"], ["patch_tokens"]]
    want = reference_image(tiny_model, small, [made[names[0]], None, made[names[2]]])
    assert (results[0]["cls1"] - want["cls1"][:1]).abs().max() <= 1e-4
    assert (results[1]["cls2"] - want["cls2"][1:2]).abs().max() <= 1e-4
    assert (results[1]["dense_tokens"] - want["dense_tokens"][1:2]).abs().max() <= 1e-4
    assert (results[2]["patch_tokens"] - want["patch_tokens"][2:]).abs().max() <= 1e-4
    assert fused.counters.dense_passes == 1 and fused.counters.dense_rows == 1  # the dense pass ran for its row alone


def test_a_bad_request_fails_alone(image_dir: Path, adapters) -> None:  # type: ignore[no-untyped-def]
    store, made = adapters
    fused = load(image_dir, "image", store)
    good = Item(torch.from_numpy(pixels(1, 112, 4)), [next(iter(made))], ("cls1",))
    items = [
        Item(torch.from_numpy(pixels(1, 56, 5)), [""], ("cls1",)),  # a resolution the model does not serve
        good,
        Item(torch.from_numpy(pixels(1, 112, 6)), ["acme/never/1/0123456789abcdef"], ("cls1",)),
        Item(torch.from_numpy(pixels(2, 112, 7)), [""], ("cls1",)),  # two rows, one adapter id
        Item(torch.from_numpy(pixels(1, 112, 8)), [""], ("logits",)),
    ]
    results, errors = fused.run(items)
    assert sorted(errors) == [0, 2, 3, 4] and list(results[1]) == ["cls1"]
    assert "not served" in errors[0] and "unknown adapter" in errors[2]
    assert "one id per row" in errors[3] and "unknown outputs" in errors[4]
    kept = results[1]["cls1"].clone()  # outputs live in host memory the next call reuses
    alone, _ = fused.run([good])
    assert torch.equal(alone[0]["cls1"], kept)


def test_the_host_arena_is_reused_and_grows_to_what_a_call_needed() -> None:
    arena = HostArena(pinned=False)
    arena.reset()
    a = arena.take((4, 3), torch.float32)
    b = arena.take((1000,), torch.uint8)  # outgrows the first chunk: a keeps its memory
    a.fill_(1.0)
    b.fill_(7)
    assert float(a.sum()) == 12.0 and a.data_ptr() % 64 == 0 and b.data_ptr() % 64 == 0
    arena.reset()
    size = arena.buffer.numel()
    assert size >= 48 + 1000
    arena.take((4, 3), torch.float32)
    arena.take((1000,), torch.uint8)
    arena.reset()
    assert arena.buffer.numel() == size  # the same chunk serves the same call again


def test_compiled_trunk_pads_to_buckets_and_equals_eager(tiny_model, image_dir: Path, adapters) -> None:  # type: ignore[no-untyped-def]
    store, made = adapters
    eager = load(image_dir, "image", store)
    compiled = load(image_dir, "image", store, compile_mode="default", compile_backend="eager", buckets=(2, 4))
    compiled.warm((2, 4), text_len=0)
    assert compiled.trunk.compiled and not eager.trunk.compiled and compiled.trunk.compile_error == ""
    assert [compiled.trunk.bucket(n) for n in (1, 2, 3, 4, 5)] == [2, 2, 4, 4, None]  # above the largest: eager
    for rows in (3, 5):
        item = Item(torch.from_numpy(pixels(rows, 112, rows)), [next(iter(made))] * rows, ("cls1", "patch_tokens"))
        (want,), _ = eager.run([item])
        want = {k: v.clone() for k, v in want.items()}
        (got,), _ = compiled.run([item])
        assert got.keys() == want.keys() and all((got[k] - want[k]).abs().max() <= 1e-5 for k in want)


def test_bfloat16_embedding_adapters_and_trunk_stay_close_to_float32(tiny_model, image_dir: Path, adapters) -> None:  # type: ignore[no-untyped-def]
    store, made = adapters
    names = list(made)[:4]
    bf16 = FusedForward.load("image", str(image_dir), "cpu", "bfloat16", str(store), BASE, 16)
    assert bf16.stage.weight_t.dtype == torch.bfloat16  # the hand-off to the trunk is half the bytes of float32
    images = pixels(4, 112, 9)
    (got,), errors = bf16.run([Item(torch.from_numpy(images), names, ("cls1",))])
    want = reference_image(tiny_model, images, [made[n] for n in names])["cls1"]
    assert errors == {} and got["cls1"].dtype == torch.float32
    assert F.cosine_similarity(got["cls1"], want).min() > 0.99
