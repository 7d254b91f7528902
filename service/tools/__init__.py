"""Operator tools, the top room: they import what they orchestrate (the gateway, the Triton side, `training/`).

cli/     the `tipsv2` command line (one module per subcommand)
local/   the local stack of `make serve` and the launchers of real servers on loopback (tritonserver,
         redis-server) that the tests and the benchmarks use too
jobs/    Kubernetes Jobs: adapter training and upload, TensorRT engine builds, torchrun training
"""
