"""Triton Python-backend model: the image embedding stage with per-row AdaLink adapters.

inputs:  pixels UINT8 [S, S, 3] (already resized), adapter BYTES [1] ("" = base model)
outputs: tokens FP32 [2 + N, D]  ([CLS1 + pos, CLS2, patches + pos], adapted)

Parameter `runtime`: `numpy` (host memory; runs in NVIDIA's container without torch) or `torch` (parameter
`device` cpu|cuda: the adapter bank then lives on that device, see tipsv2_stages_torch.py).
"""

import os
import sys
import time

import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tipsv2_metrics import StageMetrics
from tipsv2_stages import AdapterBank, ImageEmbedStage, StageError
from tipsv2_triton import ModelArgs, adapter_ids, error_response


class NumpyImageRunner:
    def __init__(self, model):
        self.stage = ImageEmbedStage(model.file("embed.safetensors"))
        self.bank = AdapterBank(
            model.param("adapter_store"),
            "image",
            self.stage.dim,
            model.param("base_hash"),
            int(model.param("adapter_capacity", "256")),
        )

    def execute(self, requests):
        responses, adapted = [], 0
        for request in requests:
            try:
                pixels = pb_utils.get_input_tensor_by_name(request, "pixels").as_numpy()
                adapters = adapter_ids(request, pixels.shape[0])
                tokens = self.bank.apply(self.stage(pixels), adapters)
                adapted += sum(1 for a in adapters if a)
                responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("tokens", tokens)]))
            except StageError as exc:
                responses.append(error_response(str(exc)))
        return responses, adapted


class TritonPythonModel:
    def initialize(self, args):
        model = ModelArgs(args)
        if model.runtime == "torch":
            from tipsv2_embed_torch import TorchEmbedRunner

            self.runner = TorchEmbedRunner(model, "image")
        else:
            self.runner = NumpyImageRunner(model)
        self.metrics = StageMetrics(pb_utils, model.name, self.runner.bank)

    def execute(self, requests):
        started = time.perf_counter()
        responses, adapted = self.runner.execute(requests)
        self.metrics.record(started, adapted)
        return responses
