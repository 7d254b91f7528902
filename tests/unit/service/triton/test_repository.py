"""The repository generator: three flavours with identical model names and tensors, everything from config."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.triton.config import parse_pbtxt
from service.triton.repository import MANIFEST, RepositoryOptions, read_manifest
from tests.unit.service.triton.repo_fixtures import SERVED, repository
from training.contracts.served import IMAGE_MODEL, TEXT_MODEL

MODELS = {
    "tipsv2_text_embed",
    "tipsv2_text_trunk",
    TEXT_MODEL,
    "tipsv2_image_embed",
    "tipsv2_image_trunk",
    IMAGE_MODEL,
}


def configs(repo: Path) -> dict:  # type: ignore[type-arg]
    return {p.parent.name: parse_pbtxt(p.read_text()) for p in repo.glob("*/config.pbtxt")}


def tensors(config) -> tuple:  # type: ignore[no-untyped-def, type-arg]
    def io(values):  # type: ignore[no-untyped-def]
        return tuple((v.name, v.data_type, tuple(v.dims)) for v in values)

    return io(config.input), io(config.output), config.max_batch_size


@pytest.mark.parametrize(
    "options",
    [
        {"flavour": "onnx"},
        {"flavour": "gpu"},
        {"flavour": "onnx", "device": "cuda"},
    ],
)
def test_every_ensemble_flavour_has_the_local_flavours_models_and_tensors(tmp_path: Path, options: dict) -> None:  # type: ignore[type-arg]
    local = configs(repository(tmp_path))
    other = configs(repository(tmp_path, **options))
    assert set(local) == set(other) == MODELS
    for name in MODELS:
        assert tensors(other[name]) == tensors(local[name]), name
    for ensemble in (TEXT_MODEL, IMAGE_MODEL):
        assert other[ensemble].parameters == local[ensemble].parameters
        assert other[ensemble].ensemble_scheduling == local[ensemble].ensemble_scheduling


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_torch_runtime_serves_one_fused_model_per_modality_with_the_ensembles_contract(
    tmp_path: Path, device: str
) -> None:
    local = configs(repository(tmp_path))
    fused = configs(repository(tmp_path, runtime="torch", device=device))
    assert set(fused) == {TEXT_MODEL, IMAGE_MODEL}
    for name in (TEXT_MODEL, IMAGE_MODEL):
        assert tensors(fused[name]) == tensors(local[name]), name  # what the gateway sends and receives
        assert fused[name].backend == "python" and not fused[name].ensemble_scheduling.step
        gateway = {k: v.string_value for k, v in local[name].parameters.items()}
        assert gateway.items() <= {k: v.string_value for k, v in fused[name].parameters.items()}.items()
    kind = fused[IMAGE_MODEL].instance_group[0]
    assert kind.kind == (kind.KIND_GPU if device == "cuda" else kind.KIND_CPU)
    assert kind.count == (3 if device == "cuda" else 1)  # the ceiling probe's best on a GPU


def test_ensembles_carry_the_served_models_parameters(tmp_path: Path) -> None:
    params = {k: v.string_value for k, v in configs(repository(tmp_path))[TEXT_MODEL].parameters.items()}
    assert params == {
        "model_name": "tipsv2-tiny",
        "model_id": SERVED.model_id,
        "embed_dim": "64",
        "text_len": "64",
        "patch_size": "14",
        "resolutions": "224,112",
        "temperature": "0.01",
    }


def test_gpu_flavour_serves_tensorrt_plans_beside_their_onnx_with_stages_on_the_gpu(tmp_path: Path) -> None:
    repo = repository(tmp_path, flavour="gpu")
    got = configs(repo)
    for trunk in ("tipsv2_text_trunk", "tipsv2_image_trunk"):
        assert got[trunk].platform == "tensorrt_plan" and got[trunk].default_model_filename == "model.plan"
        assert got[trunk].instance_group[0].kind == got[trunk].instance_group[0].KIND_GPU
        assert (repo / trunk / "1" / "model.onnx").is_file() and not (repo / trunk / "1" / "model.plan").exists()
    embed = got["tipsv2_text_embed"]
    assert embed.parameters["runtime"].string_value == "torch" and embed.parameters["device"].string_value == "cuda"
    assert embed.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value == "no"
    assert embed.instance_group[0].kind == embed.instance_group[0].KIND_GPU
    assert read_manifest(repo)["options"]["runtime"] == "torch"


def test_onnx_flavour_uses_tritons_onnxruntime_backend(tmp_path: Path) -> None:
    repo = repository(tmp_path, flavour="onnx")
    trunk = configs(repo)["tipsv2_image_trunk"]
    assert trunk.platform == "onnxruntime_onnx" and trunk.backend == "onnxruntime"
    assert sorted(p.name for p in (repo / "tipsv2_image_trunk" / "1").iterdir()) == ["model.onnx"]
    assert configs(repo)["tipsv2_image_embed"].parameters["runtime"].string_value == "numpy"


def test_fused_models_ship_one_source_the_tower_and_their_settings(tmp_path: Path) -> None:
    repo = repository(
        tmp_path,
        runtime="torch",
        device="cuda",
        compute_dtype="bfloat16",
        torch_compile="reduce-overhead",
        compile_buckets=(16, 64, 512),
        image_max_batch=128,
        fused_instances=2,
        adapter_store="/adapters",
    )
    got = configs(repo)
    image = {k: v.string_value for k, v in got[IMAGE_MODEL].parameters.items()}
    text = {k: v.string_value for k, v in got[TEXT_MODEL].parameters.items()}
    assert image["modality"] == "image" and text["modality"] == "text"
    assert image["device"] == "cuda" and image["dtype"] == "bfloat16" and image["compile"] == "reduce-overhead"
    assert image["compile_buckets"] == "16,64,128" and text["compile_buckets"] == "16,64,256"  # max batch included
    assert image["intra_op_threads"] == "2" and image["FORCE_CPU_ONLY_INPUT_TENSORS"] == "yes"
    assert image["adapter_store"] == "/adapters" and image["base_hash"] == SERVED.model_id
    assert image["project_root"] == str(Path(__file__).resolve().parents[4])
    assert got[IMAGE_MODEL].instance_group[0].count == 2
    assert list(got[IMAGE_MODEL].model_warmup[0].inputs["pixels"].dims) == [224, 224, 3]
    for name in (TEXT_MODEL, IMAGE_MODEL):
        files = {p.name for p in (repo / name / "1").iterdir()}
        assert {"model.py", "embed.safetensors", "tower.safetensors", "tower.json", "tipsv2_fused_torch.py"} <= files
        assert (repo / name / "1" / "model.py").read_bytes() == (repo / TEXT_MODEL / "1" / "model.py").read_bytes()
    assert read_manifest(repo)["server"]["python_shm_default_bytes"] >= 128 * 224 * 224 * 3


def test_gpu_stages_can_hand_tensors_over_through_host_memory(tmp_path: Path) -> None:
    on_device = configs(repository(tmp_path, flavour="gpu"))["tipsv2_image_embed"].parameters
    via_host = configs(repository(tmp_path, flavour="gpu", keep_on_device=False))["tipsv2_image_embed"].parameters
    assert on_device["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value == "no" and "host_outputs" not in on_device
    assert via_host["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value == "yes"
    assert via_host["host_outputs"].string_value == "1"


def test_batching_instances_and_warmup_come_from_the_options(tmp_path: Path) -> None:
    repo = repository(
        tmp_path,
        text_max_batch=128,
        image_max_batch=16,
        max_queue_delay_us=750,
        preferred_batch_sizes=(8, 16),
        max_queue_size=64,
        queue_timeout_us=5000,
        trunk_instances=3,
        embed_instances=2,
        warmup_batch=4,
        adapter_capacity=32,
        adapter_store="/adapters",
    )
    got = configs(repo)
    assert got["tipsv2_text_trunk"].max_batch_size == got[TEXT_MODEL].max_batch_size == 128
    assert got["tipsv2_image_embed"].max_batch_size == got[IMAGE_MODEL].max_batch_size == 16
    batching = got["tipsv2_image_trunk"].dynamic_batching
    assert batching.max_queue_delay_microseconds == 750 and list(batching.preferred_batch_size) == [8, 16]
    assert batching.default_queue_policy.max_queue_size == 64
    assert batching.default_queue_policy.default_timeout_microseconds == 5000
    assert got["tipsv2_text_trunk"].instance_group[0].count == 3
    assert got["tipsv2_text_embed"].instance_group[0].count == 2
    warmup = got["tipsv2_image_trunk"].model_warmup[0]
    assert warmup.batch_size == 4 and list(warmup.inputs["tokens"].dims) == [2 + 16 * 16, 64]
    assert list(got["tipsv2_image_embed"].model_warmup[0].inputs["pixels"].dims) == [224, 224, 3]
    embed_params = got["tipsv2_text_embed"].parameters
    assert embed_params["adapter_capacity"].string_value == "32"
    assert embed_params["adapter_store"].string_value == "/adapters"
    assert embed_params["base_hash"].string_value == SERVED.model_id


def test_warmup_can_be_switched_off(tmp_path: Path) -> None:
    assert all(not c.model_warmup for c in configs(repository(tmp_path, warmup=False)).values())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"flavour": "tpu"}, "unknown flavour"),
        ({"flavour": "gpu", "device": "cpu"}, "device is cuda"),
        ({"device": "cuda"}, "runtime numpy runs on the CPU"),
        ({"text_max_batch": 0}, "at least 1"),
        ({"warmup_batch": 64}, "warmup_batch"),
        ({"compile_backend": "tensorrt"}, "compile backend"),
        ({"compile_buckets": (0, 8)}, "buckets at least 1"),
    ],
)
def test_bad_option_combinations_are_refused(options: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        RepositoryOptions(**options).resolved()


def test_generation_replaces_the_output_folder_and_writes_a_manifest(tmp_path: Path) -> None:
    repo = repository(tmp_path)
    (repo / "stale").mkdir()
    repo = repository(tmp_path)
    assert not (repo / "stale").exists() and (repo / MANIFEST).is_file()
    assert read_manifest(repo)["served"]["resolutions"] == [224, 112]
    with pytest.raises(FileNotFoundError, match="not a generated"):
        read_manifest(tmp_path)
