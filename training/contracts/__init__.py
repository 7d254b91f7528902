"""The contracts between the rooms, each written once: what the gateway, the Triton models and training must agree
on, importable without torch or any other part of this project.

    adapter_file.py   the AdaLink file: tensors, metadata, the validator every reader uses
    adapter_store.py  the store's layout, adapter names and tenants, the immutable adapter id
    activations.py    the activations an adapter may use, in numpy and (built on first use) in torch
    served.py         the served Triton models: names, tensors and dtypes, the parameters the gateway reads

The repository generator copies this folder into every Python-backend model's version folder as the package
`tipsv2_contracts` (NVIDIA's Triton container has no project code), so the modules import one another relatively
and nothing outside the standard library, numpy and safetensors.
"""
