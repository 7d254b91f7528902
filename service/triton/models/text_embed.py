"""Triton Python-backend model: the text embedding stage with per-row AdaLink adapters.

inputs:  input_ids INT32 [L], adapter BYTES [1] ("" = base model, else `tenant/name/version/digest`)
outputs: embeddings FP32 [L, D], token_mask FP32 [L]

Parameter `runtime`: `numpy` (host memory; runs in NVIDIA's container without torch) or `torch` (parameter
`device` cpu|cuda: the adapter bank then lives on that device, see tipsv2_stages_torch.py).
"""

import os
import sys
import time

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tipsv2_metrics import StageMetrics
from tipsv2_stages import AdapterBank, StageError, TextEmbedStage
from tipsv2_triton import ModelArgs, adapter_ids, error_response


class NumpyTextRunner:
    def __init__(self, model):
        self.stage = TextEmbedStage(model.file("embed.safetensors"))
        self.bank = AdapterBank(
            model.param("adapter_store"),
            "text",
            self.stage.dim,
            model.param("base_hash"),
            int(model.param("adapter_capacity", "256")),
        )

    def execute(self, requests):
        responses, adapted = [], 0
        for request in requests:
            try:
                ids = pb_utils.get_input_tensor_by_name(request, "input_ids").as_numpy()
                adapters = adapter_ids(request, ids.shape[0])
                embeddings, mask = self.stage(ids.astype(np.int64))
                embeddings = self.bank.apply(embeddings, adapters)
                adapted += sum(1 for a in adapters if a)
                tensors = [pb_utils.Tensor("embeddings", embeddings), pb_utils.Tensor("token_mask", mask)]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            except StageError as exc:
                responses.append(error_response(str(exc)))
        return responses, adapted


class TritonPythonModel:
    def initialize(self, args):
        model = ModelArgs(args)
        if model.runtime == "torch":
            from tipsv2_embed_torch import TorchEmbedRunner

            self.runner = TorchEmbedRunner(model, "text")
        else:
            self.runner = NumpyTextRunner(model)
        self.metrics = StageMetrics(pb_utils, model.name, self.runner.bank)

    def execute(self, requests):
        started = time.perf_counter()
        responses, adapted = self.runner.execute(requests)
        self.metrics.record(started, adapted)
        return responses
