"""`tipsv2 export`: official-layout weights -> ONNX trunks (checked against PyTorch) -> Triton repository."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("export", help="export weights to a Triton model repository")
    parser.add_argument("--weights", type=Path, required=True, help="directory with the official .npz files")
    parser.add_argument("--variant", required=True, help="tipsv2-b14, b14, tipsv2-tiny, ...")
    parser.add_argument("--out", type=Path, required=True, help="model repository to (re)write")
    parser.add_argument(
        "--flavour",
        choices=("local", "onnx", "gpu"),
        default="local",
        help="trunks in Python-backend models (bundled tritonserver), Triton's onnxruntime backend, or TensorRT plans",
    )
    parser.add_argument(
        "--runtime",
        choices=("numpy", "torch"),
        default=None,
        help="code of the Python-backend models: numpy stages + onnxruntime trunk, or torch with the adapter bank on "
        "the device (default: torch for gpu, else numpy)",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda for gpu, else cpu")
    parser.add_argument(
        "--compute-dtype", choices=("float32", "bfloat16", "float16"), default="float32", help="torch trunk precision"
    )
    parser.add_argument("--torch-compile", default="", help="torch.compile mode of the torch trunk (default: eager)")
    parser.add_argument(
        "--compile-backend",
        choices=("inductor", "cudagraphs", "eager"),
        default="inductor",
        help="with --torch-compile: inductor (takes the mode; reduce-overhead adds CUDA graphs), cudagraphs, or eager",
    )
    parser.add_argument(
        "--compile-bucket",
        type=int,
        action="append",
        dest="compile_buckets",
        help="batch size with its own static compiled graph, warmed at load (repeatable; the max batch is always one; "
        "none: one graph with a dynamic batch axis)",
    )
    parser.add_argument(
        "--host-tensors",
        action="store_true",
        help="gpu flavour: hand tensors between ensemble steps over through host memory (a fallback)",
    )
    parser.add_argument(
        "--resolution",
        type=int,
        action="append",
        dest="resolutions",
        help="served square image size (repeatable; first is the default)",
    )
    parser.add_argument("--adapter-store", default="", help="adapter store path as Triton will see it")
    parser.add_argument("--adapter-capacity", type=int, default=256, help="adapters kept in each bank (LRU)")
    parser.add_argument("--text-max-batch", type=int, default=256)
    parser.add_argument("--image-max-batch", type=int, default=32)
    parser.add_argument(
        "--max-queue-delay-us",
        type=int,
        default=0,
        help="Triton's dynamic-batching window (default 0: the gateway batches across requests; 2000 suits clients "
        "that call Triton directly one row at a time)",
    )
    parser.add_argument("--preferred-batch-size", type=int, action="append", dest="preferred_batch_sizes")
    parser.add_argument(
        "--max-queue-size",
        type=int,
        default=1024,
        help="queued requests per model before Triton refuses (gateway: 503); 0 = unbounded",
    )
    parser.add_argument("--trunk-instances", type=int, default=1)
    parser.add_argument("--embed-instances", type=int, default=1)
    parser.add_argument(
        "--fused-instances",
        type=int,
        default=0,
        help="instances of each fused model (runtime torch, local flavour); default 3 on a GPU, 1 on a CPU",
    )
    parser.add_argument("--intra-op-threads", type=int, default=0)
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--warmup-batch", type=int, default=1, help="batch size of each model's warm-up request")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="ONNX vs PyTorch parity bound")
    parser.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from service.triton.build import build_repository
    from service.triton.repository import RepositoryOptions, read_manifest

    options = RepositoryOptions(
        flavour=args.flavour,
        runtime=args.runtime,
        device=args.device,
        compute_dtype=args.compute_dtype,
        torch_compile=args.torch_compile,
        compile_backend=args.compile_backend,
        compile_buckets=tuple(args.compile_buckets or ()),
        keep_on_device=not args.host_tensors,
        preferred_batch_sizes=tuple(args.preferred_batch_sizes or ()),
        text_max_batch=args.text_max_batch,
        image_max_batch=args.image_max_batch,
        max_queue_delay_us=args.max_queue_delay_us,
        max_queue_size=args.max_queue_size,
        trunk_instances=args.trunk_instances,
        embed_instances=args.embed_instances,
        fused_instances=args.fused_instances,
        intra_op_threads=args.intra_op_threads,
        adapter_store=args.adapter_store,
        adapter_capacity=args.adapter_capacity,
        warmup=not args.no_warmup,
        warmup_batch=args.warmup_batch,
    )
    out = build_repository(args.weights, args.variant, args.out, options, tuple(args.resolutions or ()), args.tolerance)
    print(f"wrote {args.flavour} model repository to {out}")
    shm = read_manifest(out)["server"]["python_shm_default_bytes"]
    print(f"start tritonserver with --backend-config=python,shm-default-byte-size={shm} (a full batch per stub)")
    if args.flavour == "gpu":
        print(f"next, on a GPU node inside NVIDIA's TensorRT container: tipsv2 engines build --repository {out}")
    return 0
