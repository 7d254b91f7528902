"""Triton Python-backend model: the image embedding stage with per-request AdaLink adapters.

inputs:  pixels UINT8 [S, S, 3] (already resized), adapter BYTES [1] ("" = base model)
outputs: tokens FP32 [2 + N, D]  ([CLS1 + pos, CLS2, patches + pos], adapted)
"""

import json
import os
import sys

import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tipsv2_metrics import StageMetrics
from tipsv2_stages import AdapterBank, ImageEmbedStage, StageError


def _param(config, key, default=""):
    return config.get("parameters", {}).get(key, {}).get("string_value", default)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        self.stage = ImageEmbedStage(os.path.join(version_dir, "embed.safetensors"))
        self.bank = AdapterBank(
            _param(config, "adapter_store"),
            "image",
            self.stage.dim,
            _param(config, "base_hash"),
            int(_param(config, "adapter_capacity", "256")),
        )
        self.metrics = StageMetrics(pb_utils, args["model_name"], self.bank)

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                pixels = pb_utils.get_input_tensor_by_name(request, "pixels").as_numpy()
                adapters = [
                    a.decode() if isinstance(a, bytes) else str(a)
                    for a in pb_utils.get_input_tensor_by_name(request, "adapter").as_numpy().reshape(-1)
                ]
                tokens = self.metrics.apply(self.stage(pixels), adapters)
                responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("tokens", tokens)]))
            except StageError as exc:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
        return responses
