"""`tipsv2 jobs`: create the product's Kubernetes Jobs for an installed release, and the adapter Job's upload step.

    tipsv2 jobs submit adapt --adapter retail --base weights/b14 --task task.yaml --api-key-secret acme-key
    tipsv2 jobs submit build-engines --precision fp16
    tipsv2 jobs submit train --name b14-run --config b14.yaml --nodes 2 --gpus-per-node 8 optim.lr=3e-4
    tipsv2 jobs upload-adapter --gateway URL --name retail --file retail.safetensors   (inside the adapter Job)

Images, claims, GPU placement and the gateway URL come from the release (`--release`, its `<release>-tipsv2-jobs`
ConfigMap) or from `--defaults FILE`; `--dry-run` prints the manifests instead of creating them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import yaml

from service.tools.jobs import adapt, engines, train
from service.tools.jobs.defaults import JobDefaults
from service.tools.jobs.pods import Resources, Submission


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("jobs", help="submit adapter-training, engine-build and training Jobs")
    sub = parser.add_subparsers(dest="jobs_command", required=True)
    submit = sub.add_parser("submit", help="create a Job for an installed release")
    kinds = submit.add_subparsers(dest="kind", required=True)
    _register_adapt(kinds.add_parser("adapt", help="train an adapter and upload it through the adapter API"))
    _register_engines(kinds.add_parser("build-engines", help="build TensorRT engines on the serving GPU model"))
    _register_train(kinds.add_parser("train", help="torchrun training on one or more GPU nodes (Indexed Job)"))
    upload = sub.add_parser("upload-adapter", help="upload an adapter file (the adapter Job's last step)")
    upload.add_argument("--gateway", required=True, help="gateway base URL")
    upload.add_argument("--name", required=True, help="adapter name")
    upload.add_argument("--file", type=Path, required=True, help="the .safetensors adapter")
    upload.add_argument("--no-activate", action="store_true", help="store the version without making it active")
    upload.set_defaults(func=_upload)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--release", default="tipsv2", help="Helm release whose job defaults to use")
    parser.add_argument("-n", "--namespace", default=None, help="namespace (default: the release's)")
    parser.add_argument("--defaults", type=Path, help="job defaults JSON instead of the release's ConfigMap")
    parser.add_argument("--image", help="override the Job's image")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then KUBECONFIG/~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--dry-run", action="store_true", help="print the manifests; create nothing")
    parser.add_argument("--cpu", default=None, help="CPU request")
    parser.add_argument("--memory", default=None, help="memory request and limit")


def _register_adapt(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--adapter", required=True, help="adapter name (a DNS label)")
    parser.add_argument("--base", required=True, help="base weights directory, relative to the data claim")
    parser.add_argument("--task", type=Path, required=True, help="local task YAML (shipped in a ConfigMap)")
    parser.add_argument("--api-key-secret", required=True, help="Secret with the tenant's API key under `api-key`")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs for training (0: CPU)")
    parser.add_argument("--no-activate", action="store_true", help="upload without activating the new version")
    parser.add_argument("--adapt-arg", action="append", default=[], help="extra `tipsv2 adapt` argument")
    parser.set_defaults(func=_submit, build=_adapt_submission)


def _register_engines(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--precision", choices=("fp16", "bf16", "fp32"), default="fp16")
    parser.add_argument("--repository-path", help="repository inside the model store (default: the release's)")
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--engines-arg", action="append", default=[], help="extra `tipsv2 engines build` argument")
    parser.set_defaults(func=_submit, build=_engines_submission)


def _register_train(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--name", required=True, help="run name (a DNS label); outputs go to /runs/<job>")
    parser.add_argument("--config", type=Path, action="append", required=True, help="local config file(s)")
    parser.add_argument("--nodes", type=int, default=1, help="nodes (pods), one torchrun each")
    parser.add_argument("--gpus-per-node", type=int, default=1, help="GPUs and processes per node (0: CPU, gloo)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="`tipsv2 train` overrides")
    parser.set_defaults(func=_submit, build=_train_submission)


def _resources(args: argparse.Namespace, default: Resources, gpus: int) -> Resources:
    return Resources(cpu=args.cpu or default.cpu, memory=args.memory or default.memory, gpus=gpus)


def _adapt_submission(args: argparse.Namespace, defaults: JobDefaults) -> Submission:
    request = adapt.AdaptRequest(
        adapter=args.adapter,
        base=args.base,
        task_yaml=args.task.read_text(),
        api_key_secret=args.api_key_secret,
        resources=_resources(args, adapt.ADAPT_RESOURCES, args.gpus),
        activate=not args.no_activate,
        extra_args=tuple(args.adapt_arg),
    )
    return adapt.build(request, defaults)


def _engines_submission(args: argparse.Namespace, defaults: JobDefaults) -> Submission:
    request = engines.BuildEnginesRequest(
        precision=args.precision,
        repository_path=args.repository_path,
        resources=_resources(args, engines.BUILD_RESOURCES, args.gpus),
        extra_args=tuple(args.engines_arg),
    )
    return engines.build(request, defaults)


def _train_submission(args: argparse.Namespace, defaults: JobDefaults) -> Submission:
    for override in args.overrides:
        if "=" not in override:
            raise ValueError(f"override {override!r} is not KEY=VALUE")
    request = train.TrainRequest(
        name=args.name,
        configs={path.name: path.read_text() for path in args.config},
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        cpu=args.cpu or train.TrainRequest.cpu,
        memory=args.memory or train.TrainRequest.memory,
        overrides=tuple(args.overrides),
    )
    return train.build(request, defaults)


def _defaults(args: argparse.Namespace, api: object | None) -> JobDefaults:
    if args.defaults is not None:
        defaults = JobDefaults.from_file(args.defaults)
    elif api is not None:
        from service.tools.jobs.submit import read_defaults

        defaults = read_defaults(api, args.release, args.namespace or "default")
    else:
        raise ValueError("--dry-run without a cluster needs --defaults FILE (the release's defaults.json)")
    if args.namespace:
        defaults = dataclasses.replace(defaults, namespace=args.namespace)
    if args.image:
        defaults = dataclasses.replace(defaults, trainer_image=args.image, engine_image=args.image)
    return defaults


def _submit(args: argparse.Namespace) -> int:
    offline = args.dry_run and args.defaults is not None
    api = None
    if not offline:
        from service.tools.jobs.submit import api_client

        api = api_client(args.kubeconfig, args.context)
    submission = args.build(args, _defaults(args, api))
    if args.dry_run:
        print(yaml.safe_dump_all(submission.manifests(), sort_keys=False), end="")
        return 0
    from service.tools.jobs.submit import submit

    name = submit(api, submission)
    namespace = submission.job["metadata"]["namespace"]
    print(f"created job {namespace}/{name}; follow it with: kubectl -n {namespace} logs -f job/{name} --all-containers")
    return 0


def _upload(args: argparse.Namespace) -> int:
    from service.tools.jobs.upload import upload_adapter

    key = os.environ.get("TIPSV2_API_KEY", "")
    if not key:
        raise ValueError("set TIPSV2_API_KEY to the tenant's API key")
    answer = upload_adapter(args.gateway, key, args.name, args.file, activate=not args.no_activate)
    print(f"uploaded {answer.get('name', args.name)} version {answer.get('uploaded_version')}")
    return 0
