"""Sources of the Python-backend models; the repository generator copies them into each model's version folder.

    embed.py                 an ensemble's embedding stage, either modality (numpy, or torch through
                             tipsv2_embed_torch.py with the adapter bank on the device)
    onnx_trunk.py            a trunk run by onnxruntime (the local flavour's numpy runtime)
    fused.py                 the torch runtime's whole forward, either modality, through tipsv2_fused_torch.py
    tipsv2_stages.py         the embedding stages and the adapter bank in numpy; `read_adapter`
    tipsv2_stages_torch.py   the same in torch, the bank resident on the device
    tipsv2_batch.py          the requests of one execute as batches: grouped by shape, split back
    tipsv2_triton.py         parameters, adapter ids, torch inputs and outputs of the Python backend
    tipsv2_metrics.py        the models' own metrics on Triton's metrics port

Beside them every model folder gets the contracts (`training/contracts/`) as the package `tipsv2_contracts`: the
adapter file's validator, the store layout, the activation table, the tensor names. What they may import: the numpy
files import only numpy, safetensors, onnxruntime and the contracts (never this project), so they also run inside
NVIDIA's own Triton container. The fused models are the exception: they load the model library's towers
(`training.export.torch_trunk`) from the project, whose root the generator writes into their config
(`project_root`), so they run where the project is installed.
"""
