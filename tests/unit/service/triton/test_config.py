"""Typed model configs render to config.pbtxt that Triton's own schema parses back identically."""

from __future__ import annotations

from service.triton.config import DynamicBatching, EnsembleStep, InstanceGroup, ModelConfig, Tensor, parse_pbtxt


def test_config_round_trips_through_tritons_schema() -> None:
    config = ModelConfig(
        name="m",
        backend="python",
        max_batch_size=8,
        inputs=(Tensor("x", "TYPE_FP32", (4,)),),
        outputs=(Tensor("y", "TYPE_FP32", (-1, 4)),),
        dynamic_batching=DynamicBatching(500, (4, 8), max_queue_size=16, default_timeout_us=1000),
        instance_groups=(InstanceGroup(2, "KIND_CPU"),),
        parameters={"k": "v"},
    )
    parsed = parse_pbtxt(config.to_pbtxt())
    assert parsed.name == "m" and parsed.max_batch_size == 8
    assert parsed.dynamic_batching.max_queue_delay_microseconds == 500
    assert list(parsed.dynamic_batching.preferred_batch_size) == [4, 8]
    assert parsed.dynamic_batching.default_queue_policy.max_queue_size == 16
    assert parsed.instance_group[0].count == 2
    assert parsed.parameters["k"].string_value == "v"
    assert list(parsed.output[0].dims) == [-1, 4]


def test_ensemble_steps_are_rendered() -> None:
    config = ModelConfig(
        name="e",
        platform="ensemble",
        inputs=(Tensor("a", "TYPE_INT32", (2,)),),
        outputs=(Tensor("b", "TYPE_FP32", (2,)),),
        ensemble_steps=(EnsembleStep("s", {"in": "a"}, {"out": "b"}),),
    )
    step = parse_pbtxt(config.to_pbtxt()).ensemble_scheduling.step[0]
    assert step.model_name == "s" and step.input_map["in"] == "a" and step.output_map["out"] == "b"
