"""tipsv2-serve's serving side, in three rooms (docs/architecture.md):

    gateway/   the FastAPI gateway: tenants, REST endpoints, adapter uploads and hot swap, the Redis cache, the
               Triton client. Torch-free: the gateway image does not carry torch (a test holds it to that).
    triton/    the Triton side: export's artifacts -> a model repository (typed configs, the Python-backend model
               sources copied into it), TensorRT engines for the gpu flavour.
    tools/     operator tools on top: the `tipsv2` CLI, the local stack and its server launchers, Kubernetes Jobs.

Imports point down only: tools -> gateway | triton -> training; the gateway and the Triton side never import
each other, and `training/` never imports this package (tests/unit/test_layers.py).
"""
