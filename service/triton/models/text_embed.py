"""Triton Python-backend model: the text embedding stage with per-request AdaLink adapters.

inputs:  input_ids INT32 [L], adapter BYTES [1] ("" = base model)
outputs: embeddings FP32 [L, D], token_mask FP32 [L]
"""

import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tipsv2_metrics import StageMetrics
from tipsv2_stages import AdapterBank, StageError, TextEmbedStage


def _param(config, key, default=""):
    return config.get("parameters", {}).get(key, {}).get("string_value", default)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        self.stage = TextEmbedStage(os.path.join(version_dir, "embed.safetensors"))
        self.bank = AdapterBank(
            _param(config, "adapter_store"),
            "text",
            self.stage.dim,
            _param(config, "base_hash"),
            int(_param(config, "adapter_capacity", "256")),
        )
        self.metrics = StageMetrics(pb_utils, args["model_name"], self.bank)

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                ids = pb_utils.get_input_tensor_by_name(request, "input_ids").as_numpy()
                adapters = [
                    a.decode() if isinstance(a, bytes) else str(a)
                    for a in pb_utils.get_input_tensor_by_name(request, "adapter").as_numpy().reshape(-1)
                ]
                embeddings, mask = self.stage(ids.astype(np.int64))
                embeddings = self.metrics.apply(embeddings, adapters)
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[pb_utils.Tensor("embeddings", embeddings), pb_utils.Tensor("token_mask", mask)]
                    )
                )
            except StageError as exc:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
        return responses
