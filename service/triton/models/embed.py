"""Triton Python-backend model: an ensemble's embedding stage, with per-row AdaLink adapters (either modality).

    text:   input_ids INT32 [L], adapter BYTES [1]  -> embeddings FP32 [L, D], token_mask FP32 [L]
    image:  pixels UINT8 [S, S, 3] (already resized), adapter BYTES [1]  -> tokens FP32 [2 + N, D]
            ([CLS1 + pos, CLS2, patches + pos], adapted)

adapter: "" = the base model, else `tenant/name/version/digest`. Parameters: `modality` (text|image), `runtime`:
`numpy` (host memory; runs in NVIDIA's container without torch) or `torch` (parameter `device` cpu|cuda: the
adapter bank then lives on that device, see tipsv2_stages_torch.py).
"""

import os
import sys
import time

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tipsv2_contracts.served import INPUTS
from tipsv2_metrics import StageMetrics
from tipsv2_stages import STAGES, AdapterBank, StageError
from tipsv2_triton import ModelArgs, adapter_ids, error_response


class NumpyEmbedRunner:
    def __init__(self, model, modality):
        self.stage = STAGES[modality](model.file("embed.safetensors"))
        self.input_name = INPUTS[modality]
        self.bank = AdapterBank(modality=modality, dim=self.stage.dim, **model.bank_settings())

    def execute(self, requests):
        """Returns (responses, rows run with an adapter)."""
        responses, adapted = [], 0
        for request in requests:
            try:
                x = pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy()
                adapters = adapter_ids(request, x.shape[0])
                feeds = self.stage.trunk_inputs(x, lambda h, ids=adapters: self.bank.apply(h, ids))
                adapted += sum(1 for a in adapters if a)
                tensors = [pb_utils.Tensor(name, np.ascontiguousarray(value)) for name, value in feeds.items()]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            except StageError as exc:
                responses.append(error_response(str(exc)))
        return responses, adapted


class TritonPythonModel:
    def initialize(self, args):
        model = ModelArgs(args)
        modality = model.param("modality")
        if model.runtime == "torch":
            from tipsv2_embed_torch import TorchEmbedRunner

            self.runner = TorchEmbedRunner(model, modality)
        else:
            self.runner = NumpyEmbedRunner(model, modality)
        self.metrics = StageMetrics(pb_utils, model.name, self.runner.bank)

    def execute(self, requests):
        started = time.perf_counter()
        responses, adapted = self.runner.execute(requests)
        self.metrics.record(started, adapted)
        return responses
