"""Typed Triton model configurations, rendered to `config.pbtxt` through Triton's own protobuf schema.

Building the text through `model_config_pb2` (shipped with tritonclient) means a field name or enum that Triton
would reject fails here, at generation time, not when the server loads the repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

DType = Literal[
    "TYPE_FP32", "TYPE_FP16", "TYPE_BF16", "TYPE_INT32", "TYPE_INT64", "TYPE_UINT8", "TYPE_STRING", "TYPE_BOOL"
]


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: DType
    dims: tuple[int, ...]  # per-item dims; the batch axis is implied by max_batch_size > 0


@dataclass(frozen=True)
class DynamicBatching:
    max_queue_delay_us: int = 1000
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_size: int = 0  # 0 = unbounded; >0 rejects requests beyond it instead of queueing
    default_timeout_us: int = 0  # 0 = none; >0 rejects requests that waited longer in the queue


@dataclass(frozen=True)
class InstanceGroup:
    count: int = 1
    kind: Literal["KIND_CPU", "KIND_GPU", "KIND_AUTO"] = "KIND_CPU"
    gpus: tuple[int, ...] = ()


@dataclass(frozen=True)
class EnsembleStep:
    model_name: str
    input_map: dict[str, str]  # the step model's input -> ensemble tensor
    output_map: dict[str, str]  # the step model's output -> ensemble tensor


@dataclass(frozen=True)
class Warmup:
    name: str
    batch_size: int
    inputs: dict[str, Tensor]  # zero-filled tensors (dims per item)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    max_batch_size: int = 64
    backend: str = ""  # "python", "onnxruntime", "tensorrt"
    platform: str = ""  # "ensemble", "onnxruntime_onnx", "tensorrt_plan"
    dynamic_batching: DynamicBatching | None = None
    instance_groups: tuple[InstanceGroup, ...] = ()
    parameters: dict[str, str] = field(default_factory=dict)
    ensemble_steps: tuple[EnsembleStep, ...] = ()
    warmups: tuple[Warmup, ...] = ()
    default_model_filename: str = ""

    def to_proto(self) -> pb.ModelConfig:
        cfg = pb.ModelConfig(
            name=self.name,
            max_batch_size=self.max_batch_size,
            backend=self.backend,
            platform=self.platform,
            default_model_filename=self.default_model_filename,
        )
        cfg.input.extend(_tensor(pb.ModelInput, t) for t in self.inputs)
        cfg.output.extend(_tensor(pb.ModelOutput, t) for t in self.outputs)
        if self.dynamic_batching is not None:
            _dynamic_batching(cfg.dynamic_batching, self.dynamic_batching)
        for group in self.instance_groups:
            cfg.instance_group.add(
                count=group.count, kind=pb.ModelInstanceGroup.Kind.Value(group.kind), gpus=list(group.gpus)
            )
        for key, value in sorted(self.parameters.items()):
            # An empty value is dropped: Triton's JSON view of the config omits it anyway (proto3 default), and every
            # reader here treats an absent parameter as empty.
            if value:
                cfg.parameters[key].string_value = value
        for step in self.ensemble_steps:
            s = cfg.ensemble_scheduling.step.add(model_name=step.model_name, model_version=-1)
            s.input_map.update(step.input_map)
            s.output_map.update(step.output_map)
        for warmup in self.warmups:
            w = cfg.model_warmup.add(name=warmup.name, batch_size=warmup.batch_size)
            for key, tensor in warmup.inputs.items():
                w.inputs[key].data_type = pb.DataType.Value(tensor.dtype)
                w.inputs[key].dims.extend(tensor.dims)
                w.inputs[key].zero_data = True
        return cfg

    def to_pbtxt(self) -> str:
        return str(text_format.MessageToString(self.to_proto()))


def _tensor(cls: type, t: Tensor) -> object:
    return cls(name=t.name, data_type=pb.DataType.Value(t.dtype), dims=list(t.dims))


def _dynamic_batching(msg: pb.ModelDynamicBatching, db: DynamicBatching) -> None:
    msg.max_queue_delay_microseconds = db.max_queue_delay_us
    msg.preferred_batch_size.extend(db.preferred_batch_sizes)
    if db.max_queue_size or db.default_timeout_us:
        policy = msg.default_queue_policy
        policy.max_queue_size = db.max_queue_size
        policy.default_timeout_microseconds = db.default_timeout_us
        policy.timeout_action = pb.ModelQueuePolicy.TimeoutAction.REJECT
        policy.allow_timeout_override = True


def parse_pbtxt(text: str) -> pb.ModelConfig:
    """Parses a `config.pbtxt` back (for tests and for reading parameters)."""
    return text_format.Parse(text, pb.ModelConfig())
