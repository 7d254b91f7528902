"""Triton Python-backend model: a trunk run by torch (the `local` flavour with runtime torch).

The tower is rebuilt from this project's model library (`training.export.torch_trunk`), so this model needs the
project: parameter `project_root` (written by the generator) goes onto sys.path, since the Python backend's stub
does not read PYTHONPATH. Further parameters: `device` (cpu|cuda), `dtype` (float32|bfloat16|float16: the compute
precision; inputs and outputs stay float32), `compile` (a torch.compile mode, "" for eager).

Dynamic batching hands `execute` several requests: those of one shape run as one batch; inputs and outputs cross
the backend through DLPack, so on a GPU nothing leaves the device between the embedding stage and this trunk.
"""

import os
import sys

import torch
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tipsv2_triton import ModelArgs, torch_input, torch_output


class TritonPythonModel:
    def initialize(self, args):
        model = ModelArgs(args)
        root = model.param("project_root")
        if root and root not in sys.path:
            sys.path.insert(1, root)
        from training.export.torch_trunk import load_torch_trunk

        self.host_outputs = model.host_outputs
        self.trunk = load_torch_trunk(
            model.version_dir, model.torch_device(), model.param("dtype", "float32"), model.param("compile", "")
        )

    def execute(self, requests):
        feeds = [{name: torch_input(r, name) for name in self.trunk.input_names} for r in requests]
        wanted = [set(r.requested_output_names()) or set(self.trunk.output_names) for r in requests]
        first = self.trunk.input_names[0]
        groups = {}
        for index, feed in enumerate(feeds):  # requests of different shapes (resolutions) cannot share a batch
            groups.setdefault(tuple(feed[first].shape[1:]), []).append(index)
        outputs = [None] * len(requests)
        for members in groups.values():
            batch = {n: _cat([feeds[i][n] for i in members]) for n in self.trunk.input_names}
            union = set().union(*(wanted[i] for i in members))
            result = self.trunk(batch, [n for n in self.trunk.output_names if n in union])
            start = 0
            for i in members:
                rows = feeds[i][first].shape[0]
                outputs[i] = {n: v[start : start + rows] for n, v in result.items() if n in wanted[i]}
                start += rows
        if self.trunk.device.type == "cuda":
            # Triton copies DLPack'd GPU outputs on its own stream: the results must be complete before it does.
            torch.cuda.current_stream(self.trunk.device).synchronize()
        return [
            pb_utils.InferenceResponse(
                output_tensors=[torch_output(n, v.cpu() if self.host_outputs else v) for n, v in out.items()]
            )
            for out in outputs
        ]


def _cat(parts):
    return parts[0] if len(parts) == 1 else torch.cat(parts)
