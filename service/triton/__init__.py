"""The Triton side: export's artifacts -> a Triton model repository, served by tritonserver.

    repository.py   the generator: typed options, the models of each flavour and runtime, the manifest
    config.py       typed config.pbtxt (models, tensors, batching, instances, ensembles, warm-up)
    build.py        a checkpoint (or a model in memory) -> artifacts -> a repository, in one call
    engines.py      TensorRT plans for a gpu-flavour repository (where TensorRT is: a GPU node)
    models/         the Python-backend model sources copied into each model's version folder

Imports `training/` (export's artifacts; the fused models load the model library's towers), never the gateway
nor the tools. The launcher of the bundled tritonserver is a tool: `service.tools.local.tritonserver`.
"""
