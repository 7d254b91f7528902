"""Triton Python-backend model: a trunk exported to ONNX, run by onnxruntime (the `local` flavour).

Dynamic batching hands `execute` several requests; they are concatenated into one onnxruntime run and split back.
Only the outputs a request asked for are returned.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


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
        feeds = {name: [] for name in self.inputs}
        sizes = []
        for request in requests:
            for name in self.inputs:
                feeds[name].append(pb_utils.get_input_tensor_by_name(request, name).as_numpy())
            sizes.append(feeds[self.inputs[0]][-1].shape[0])
        shapes = {tuple(a.shape[1:]) for a in feeds[self.inputs[0]]}
        if len(shapes) == 1:
            batch = {name: np.concatenate(parts) for name, parts in feeds.items()}
            results = self.session.run(self.outputs, batch)
            splits = np.cumsum(sizes)[:-1]
            per_request = list(zip(*[np.split(r, splits) for r in results]))
        else:  # requests of different shapes (e.g. resolutions) cannot share one run
            per_request = [
                self.session.run(self.outputs, {n: feeds[n][i] for n in self.inputs}) for i in range(len(requests))
            ]
        responses = []
        for request, outputs in zip(requests, per_request):
            wanted = set(request.requested_output_names()) or set(self.outputs)
            tensors = [
                pb_utils.Tensor(name, np.ascontiguousarray(value))
                for name, value in zip(self.outputs, outputs)
                if name in wanted
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
