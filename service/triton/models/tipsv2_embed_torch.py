"""The torch runtime of the embedding-stage models: stage + device-resident adapter bank, batched across requests.

Requests of one `execute` (Triton's dynamic batch) are concatenated into one embedding pass and one adapter pass
per group of requests whose adapters fit the bank together (see `DeviceAdapterBank.groups`) and whose inputs have one
shape (`tipsv2_batch`); a request that cannot be served (unknown adapter, bad shape) gets its own error response and
never fails the others.
"""

import torch

if __package__:
    from training.contracts.served import INPUTS

    from .tipsv2_batch import by_shape, split
    from .tipsv2_stages import StageError
    from .tipsv2_stages_torch import TORCH_STAGES, DeviceAdapterBank
    from .tipsv2_triton import adapter_ids, error_response, torch_input, torch_output
else:
    from tipsv2_batch import by_shape, split
    from tipsv2_contracts.served import INPUTS
    from tipsv2_stages import StageError
    from tipsv2_stages_torch import TORCH_STAGES, DeviceAdapterBank
    from tipsv2_triton import adapter_ids, error_response, torch_input, torch_output

import triton_python_backend_utils as pb_utils


class TorchEmbedRunner:
    def __init__(self, model, modality):
        self.input_name = INPUTS[modality]
        device = model.torch_device()
        self.host_outputs = model.host_outputs
        self.stage = TORCH_STAGES[modality](model.file("embed.safetensors"), device)
        self.bank = DeviceAdapterBank(modality=modality, dim=self.stage.dim, device=device, **model.bank_settings())

    def execute(self, requests):
        """Returns (responses, rows run with an adapter)."""
        errors, inputs, adapters = {}, {}, {}
        for index, request in enumerate(requests):
            try:
                x = torch_input(request, self.input_name)
                self.stage.check(x)
                adapters[index] = adapter_ids(request, x.shape[0])
                inputs[index] = x
            except StageError as exc:
                errors[index] = str(exc)
        order = list(inputs)
        outputs, adapted = {}, 0
        group_errors = {}
        with torch.inference_mode():
            for group in self.bank.groups([adapters[i] for i in order], group_errors):
                members = [(order[j], slots) for j, slots in group]
                for same_shape in by_shape(members, lambda member: tuple(inputs[member[0]].shape[1:])):
                    outputs.update(self._run(same_shape, inputs))
                    adapted += sum(1 for _, slots in same_shape for s in slots if s)
        errors.update({order[j]: message for j, message in group_errors.items()})
        if self.bank.device.type == "cuda":
            # Triton copies DLPack'd GPU outputs on its own stream: the results must be complete before it does.
            torch.cuda.current_stream(self.bank.device).synchronize()
        responses = []
        for index in range(len(requests)):
            if index in errors:
                responses.append(error_response(errors[index]))
            else:
                tensors = [
                    torch_output(name, value.cpu() if self.host_outputs else value)
                    for name, value in outputs[index].items()
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses, adapted

    def _run(self, members, inputs):
        """members: [(request index, slots)] of one input shape -> {request index: {output name: tensor}}."""
        parts = [inputs[index] for index, _ in members]
        batch = parts[0] if len(parts) == 1 else torch.cat(parts)
        slots = [s for _, member_slots in members for s in member_slots]
        named = self.stage.trunk_inputs(batch, lambda x: self.bank.apply(x, slots))
        sizes = [part.shape[0] for part in parts]
        pieces = {name: split(value, sizes) for name, value in named.items()}
        return {index: {name: pieces[name][i] for name in named} for i, (index, _) in enumerate(members)}
