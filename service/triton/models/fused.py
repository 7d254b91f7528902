"""Triton Python-backend model: one TIPSv2 modality's whole forward in one `execute` (the torch runtime).

Served as `tipsv2_text` (input_ids INT32 [L], adapter BYTES [1] -> text_embedding FP32 [D]) and `tipsv2_image`
(pixels UINT8 [S, S, 3], adapter BYTES [1] -> cls1, cls2 FP32 [D], patch_tokens, dense_tokens FP32 [N, D]): the
same names and tensors as the ensembles of the other runtimes, so the gateway cannot tell them apart. One source for
both, keyed by the `modality` parameter; the work is `tipsv2_fused_torch.FusedForward`. Each request gets the outputs
it asked for (`requested_output_names`) and nothing else is computed or copied for it.

Parameters (written by the repository generator): modality, device (cpu|cuda), dtype, intra_op_threads,
adapter_store, adapter_capacity, base_hash, compile (a torch.compile mode, "" = eager), compile_backend,
compile_buckets, text_len, project_root (the model library; the stub ignores PYTHONPATH).
"""

import contextlib
import locale

# The stub starts in the C locale, where open() decodes ASCII: torch.compile's inductor then fails to read its
# templates (seen on the H200). PYTHONUTF8/LANG in the server's environment do not reach the stub.
with contextlib.suppress(locale.Error):
    locale.setlocale(locale.LC_CTYPE, "C.UTF-8")

import os
import sys

import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tipsv2_metrics import FusedMetrics
from tipsv2_stages import StageError
from tipsv2_triton import ModelArgs, adapter_ids, error_response, torch_input, torch_output


class TritonPythonModel:
    def initialize(self, args):
        model = ModelArgs(args)
        root = model.param("project_root")
        if root and root not in sys.path:
            sys.path.insert(1, root)
        from tipsv2_fused_torch import FusedForward

        device = model.torch_device()
        if device.startswith("cuda"):
            import torch

            torch.cuda.set_device(device)  # the current stream, and what the host arena pins for, are this GPU's
        buckets = tuple(int(b) for b in model.param("compile_buckets").split(",") if b)
        bank = model.bank_settings()
        self.fused = FusedForward.load(
            model.param("modality"),
            model.version_dir,
            device,
            dtype=model.param("dtype", "float32"),
            adapter_store=bank["store_dir"],
            base_hash=bank["base_hash"],
            adapter_capacity=bank["capacity"],
            compile_mode=model.param("compile"),
            compile_backend=model.param("compile_backend", "inductor"),
            buckets=buckets,
        )
        max_batch = int(model.config.get("max_batch_size", 1))
        self.fused.warm(buckets or (max_batch,), int(model.param("text_len", "0")))
        self.input_name = self.fused.modality.input_name
        self.outputs = self.fused.modality.outputs
        self.metrics = FusedMetrics(pb_utils, model.name, self.fused)

    def execute(self, requests):
        from tipsv2_fused_torch import Item

        items, positions, errors = [], {}, {}
        for index, request in enumerate(requests):
            try:
                x = torch_input(request, self.input_name)  # a view of the request's shared memory: no copy yet
                wanted = tuple(request.requested_output_names()) or self.outputs
                positions[index] = len(items)
                items.append(Item(x, adapter_ids(request, int(x.shape[0])), wanted))
            except StageError as exc:
                errors[index] = str(exc)
        results, run_errors = self.fused.run(items)
        self.metrics.record()
        responses = []
        for index in range(len(requests)):
            position = positions.get(index)
            if position is None or position in run_errors:
                responses.append(error_response(errors.get(index) or run_errors[position]))
                continue
            tensors = [torch_output(name, value) for name, value in results[position].items()]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
