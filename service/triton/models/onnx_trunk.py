"""Triton Python-backend model: a trunk exported to ONNX, run by onnxruntime (the `local` flavour).

Dynamic batching hands `execute` several requests; those of one input shape are concatenated into one onnxruntime
run and split back (`tipsv2_batch`). Only the outputs a request asked for are returned.
"""

import json
import os
import sys

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tipsv2_batch import by_shape, split


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = config.get("parameters", {})
        threads = int(params.get("intra_op_threads", {}).get("string_value", "0"))
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs = [i["name"] for i in config["input"]]
        self.outputs = [o["name"] for o in config["output"]]

    def execute(self, requests):
        feeds = [
            {name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.inputs}
            for request in requests
        ]
        results = [None] * len(requests)
        first = self.inputs[0]
        for group in by_shape(range(len(requests)), lambda i: feeds[i][first].shape[1:]):
            batch = {name: np.concatenate([feeds[i][name] for i in group]) for name in self.inputs}
            outputs = self.session.run(self.outputs, batch)
            pieces = [split(value, [feeds[i][first].shape[0] for i in group]) for value in outputs]
            for position, index in enumerate(group):
                results[index] = [piece[position] for piece in pieces]
        responses = []
        for request, outputs in zip(requests, results):
            wanted = set(request.requested_output_names()) or set(self.outputs)
            tensors = [
                pb_utils.Tensor(name, np.ascontiguousarray(value))
                for name, value in zip(self.outputs, outputs)
                if name in wanted
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
