"""The only code that talks to the Kubernetes API server, kept thin: read a release's job defaults, create a
suspended Job, create what it owns (with owner references, so deleting the Job deletes them), then start it.

Authentication: inside a pod, the pod's ServiceAccount (the chart's `<release>-tipsv2-job-submitter`); elsewhere
the kubeconfig (`--kubeconfig`, `--context`, or the usual KUBECONFIG / ~/.kube/config).
"""

from __future__ import annotations

import os
from typing import Any

from service.tools.jobs.defaults import CONFIGMAP_KEY, JobDefaults, configmap_name
from service.tools.jobs.pods import Submission

IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"


def api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise RuntimeError("the Kubernetes client is not installed: pip install 'tipsv2-serve[jobs]'") from exc
    loader: Any = config  # the client's loaders are untyped
    try:
        if kubeconfig is None and context is None and os.environ.get(IN_CLUSTER_ENV):
            loader.load_incluster_config()
        else:
            loader.load_kube_config(config_file=kubeconfig, context=context)
    except (config.ConfigException, OSError) as exc:
        raise RuntimeError(
            f"no Kubernetes credentials ({exc}); pass --kubeconfig/--context, run in a pod with the release's "
            "job-submitter ServiceAccount, or use --dry-run --defaults FILE"
        ) from exc
    return client.ApiClient()


def read_defaults(api: Any, release: str, namespace: str) -> JobDefaults:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    name = configmap_name(release)
    try:
        configmap = client.CoreV1Api(api).read_namespaced_config_map(name, namespace)
    except ApiException as exc:
        raise RuntimeError(
            f"cannot read ConfigMap {namespace}/{name} (is release {release!r} installed?): {exc.reason}"
        ) from exc
    except HTTPError as exc:
        raise RuntimeError(f"the API server is unreachable: {exc}") from exc
    return JobDefaults.from_json((configmap.data or {}).get(CONFIGMAP_KEY, ""))


def submit(api: Any, submission: Submission) -> str:
    """Creates the Job suspended, then the objects it owns, then starts it; returns the Job's name."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return _create(api, submission)
    except ApiException as exc:
        raise RuntimeError(f"the API server refused the Job ({exc.status} {exc.reason}): {exc.body}") from exc
    except HTTPError as exc:
        raise RuntimeError(f"the API server is unreachable: {exc}") from exc


def _create(api: Any, submission: Submission) -> str:
    from kubernetes import client

    # Manifests go to the API as the plain dicts the builders made (and the tests validated): typed as Any here.
    batch: Any = client.BatchV1Api(api)
    core: Any = client.CoreV1Api(api)
    namespace = submission.job["metadata"]["namespace"]
    created = batch.create_namespaced_job(namespace, submission.job)
    name, uid = str(created.metadata.name), str(created.metadata.uid)
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid, "blockOwnerDeletion": True}
    create = {"ConfigMap": core.create_namespaced_config_map, "Service": core.create_namespaced_service}
    for manifest in submission.owned:
        owned = {**manifest, "metadata": {**manifest["metadata"], "ownerReferences": [owner]}}
        create[manifest["kind"]](namespace, owned)
    batch.patch_namespaced_job(name, namespace, {"spec": {"suspend": False}})
    return name
