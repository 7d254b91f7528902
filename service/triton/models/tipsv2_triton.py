"""Helpers shared by this repository's Python-backend models: parameters, adapter ids, torch inputs and outputs.

Torch tensors cross the Python backend through DLPack in both directions. That keeps GPU tensors on the GPU, and
it is also the only output path seen working where the Python backend meets numpy 2 (on the H200 machine a
`pb_utils.Tensor(name, numpy_array)` output arrived empty at the client; `Tensor.from_dlpack` did not).
"""

import json
import os

import triton_python_backend_utils as pb_utils

if __package__:
    from .tipsv2_stages import StageError
else:
    from tipsv2_stages import StageError


class ModelArgs:
    """What `initialize(args)` says about this model instance, with typed access to its parameters."""

    def __init__(self, args):
        self.config = json.loads(args["model_config"])
        self.name = args["model_name"]
        self.version_dir = os.path.join(args["model_repository"], args["model_version"])
        self.instance_kind = args.get("model_instance_kind", "CPU")
        self.device_id = int(args.get("model_instance_device_id") or 0)

    def param(self, key, default=""):
        return self.config.get("parameters", {}).get(key, {}).get("string_value", default)

    def file(self, name):
        return os.path.join(self.version_dir, name)

    def bank_settings(self):
        """The adapter bank's keyword arguments from this model's parameters: store, base model, capacity."""
        return {
            "store_dir": self.param("adapter_store"),
            "base_hash": self.param("base_hash"),
            "capacity": int(self.param("adapter_capacity", "256")),
        }

    @property
    def host_outputs(self):
        """Outputs go back through host memory (the fallback when GPU tensors cannot cross processes)."""
        return self.param("host_outputs", "0") == "1"

    @property
    def runtime(self):
        """`numpy` (numpy stages, onnxruntime trunk: runs in NVIDIA's container) or `torch`."""
        return self.param("runtime", "numpy")

    def torch_device(self):
        """`cuda:<the GPU Triton placed this instance on>` for device=cuda, else `cpu`. Applies the instance's CPU
        thread count first: several stub processes share the cores, and torch's default (all of them) in each
        oversubscribes them."""
        threads = int(self.param("intra_op_threads", "0"))
        if threads:
            import torch

            torch.set_num_threads(threads)
        if self.param("device", "cpu") != "cuda":
            return "cpu"
        return f"cuda:{self.device_id}" if self.instance_kind == "GPU" else "cuda"


def adapter_ids(request, rows):
    """The request's `adapter` input: one id per row ("" = the base model)."""
    values = pb_utils.get_input_tensor_by_name(request, "adapter").as_numpy().reshape(-1)
    try:
        ids = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]
    except UnicodeDecodeError as exc:
        raise StageError("adapter ids must be UTF-8") from exc
    if len(ids) != rows:
        raise StageError(f"adapter must hold one id per row: {len(ids)} ids for {rows} rows")
    return ids


def torch_input(request, name):
    """An input as a torch tensor on the device Triton delivered it to (no copy)."""
    from torch.utils.dlpack import from_dlpack

    return from_dlpack(pb_utils.get_input_tensor_by_name(request, name).to_dlpack())


def torch_output(name, tensor):
    from torch.utils.dlpack import to_dlpack

    return pb_utils.Tensor.from_dlpack(name, to_dlpack(tensor.contiguous()))


def error_response(message):
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message))
