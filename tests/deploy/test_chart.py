"""The Helm chart, offline: each CI scenario lints and renders into objects that pass strict Kubernetes schema
validation (the prometheus-operator objects against their API structure), bad values are refused, and the rendered
objects keep the promises the chart makes (GPU placement, probes, shared adapter store, restricted pods)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.monitoring_crds import SCHEMAS
from tests.deploy.tools import (
    CHART,
    KUBE_VERSIONS,
    SCENARIOS,
    container,
    find,
    helm_template,
    kubernetes_validate,
    one,
    render,
    run,
    tool,
    values_file,
)

CUSTOM_KINDS = set(SCHEMAS)


def test_ci_scenarios_cover_minimal_gpu_and_ha() -> None:
    assert set(SCENARIOS) == {"minimal", "gpu", "ha"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_chart_lints_strictly_for_each_scenario(scenario: str) -> None:
    run(tool("helm"), "lint", "--strict", str(CHART), "-f", str(values_file(scenario)))


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rendered_objects_pass_strict_kubernetes_validation(scenario: str, kube_version: str) -> None:
    objects = render(scenario, "--kube-version", kube_version)
    builtin = [o for o in objects if o["kind"] not in CUSTOM_KINDS]
    kubernetes_validate(yaml.safe_dump_all(builtin), kube_version)


@pytest.mark.parametrize("scenario", ["gpu", "ha"])
def test_prometheus_operator_objects_match_their_api_structure(scenario: str) -> None:
    custom = [o for o in render(scenario) if o["kind"] in CUSTOM_KINDS]
    assert {o["kind"] for o in custom} == CUSTOM_KINDS
    for obj in custom:
        jsonschema.validate(obj, SCHEMAS[obj["kind"]])


def test_prometheus_rule_carries_the_alert_file_and_promtool_accepts_it(tmp_path: Path) -> None:
    rule = one(render("gpu"), "PrometheusRule")
    source = yaml.safe_load((CHART / "files" / "prometheus" / "tipsv2-alerts.yaml").read_text())
    assert rule["spec"]["groups"] == source["groups"]
    rules_file = tmp_path / "rendered-rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    run(tool("promtool"), "check", "rules", str(rules_file))


def test_dashboard_configmaps_hold_the_dashboard_files_for_the_sidecar() -> None:
    configmaps = [
        o for o in render("gpu") if o["kind"] == "ConfigMap" and "grafana_dashboard" in o["metadata"]["labels"]
    ]
    shipped = {p.name: json.loads(p.read_text()) for p in (CHART / "files" / "dashboards").glob("*.json")}
    rendered = {key: json.loads(text) for cm in configmaps for key, text in cm["data"].items()}
    assert rendered == shipped
    assert all(cm["metadata"]["annotations"] == {"grafana_folder": "TIPSv2"} for cm in configmaps)


# --- values: the schema and the cross-field rules refuse bad input with a message naming it ---

BAD_VALUES = {
    "unknown top-level key": (["--set", "gatway.replicaCount=2"], "gatway"),
    "misspelt nested key": (["--set", "triton.gpu=1"], "gpu"),
    "gpus not a number": (["--set-string", "triton.gpus=one"], "gpus"),
    "negative replicas": (["--set", "gateway.replicaCount=-1"], "replicaCount"),
    "unknown pull policy": (["--set", "triton.image.pullPolicy=Sometimes"], "pullPolicy"),
    "key not a sha256 hash": (["--set", "gateway.apiKeys.hashes.plaintext-key=acme"], "plaintext-key"),
    "unknown model store": (["--set", "modelStore.source=s3"], "source"),
    "relative adapter mount": (["--set", "adapterStore.mountPath=adapters"], "mountPath"),
    "emptyDir adapter store": (["--set", "adapterStore.type=emptyDir"], "type"),
    "bad fsync policy": (["--set", "redis.appendfsync=sometimes"], "appendfsync"),
    "bad scrape interval": (["--set", "metrics.serviceMonitor.interval=often"], "interval"),
    "unknown precision": (["--set", "engineBuild.precision=int3"], "precision"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_schema_rejects_bad_values(case: str) -> None:
    args, named = BAD_VALUES[case]
    result = helm_template("-f", str(values_file("minimal")), *args, check=False)
    assert result.returncode != 0, f"{case}: rendered although the values are bad"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert named in result.stderr


INCONSISTENT_VALUES = {
    "object storage without a uri": (["--set", "modelStore.source=objectStorage"], "modelStore.objectStorage.uri"),
    "engine build without a pvc": (
        [
            "--set",
            "engineBuild.enabled=true,triton.gpus=1,modelStore.source=objectStorage,modelStore.objectStorage.uri=:s3:b",
        ],
        "engineBuild.enabled needs modelStore.source: pvc",
    ),
    "engine build without GPUs": (["--set", "engineBuild.enabled=true"], "triton.gpus is 0"),
    "no redis at all": (["--set", "redis.enabled=false"], "redis.externalUrl"),
    "autoscaling bounds swapped": (
        [
            "--set",
            "gateway.autoscaling.enabled=true,gateway.autoscaling.minReplicas=5,gateway.autoscaling.maxReplicas=2",
        ],
        "minReplicas is above maxReplicas",
    ),
}


@pytest.mark.parametrize("case", sorted(INCONSISTENT_VALUES))
def test_inconsistent_values_fail_with_every_problem_listed(case: str) -> None:
    args, message = INCONSISTENT_VALUES[case]
    result = helm_template("-f", str(values_file("minimal")), *args, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_default_values_refuse_production_without_api_keys() -> None:
    result = helm_template(check=False)
    assert result.returncode != 0
    assert "production needs API keys" in result.stderr


def test_every_value_is_documented() -> None:
    """Each key in values.yaml has a `# --` comment, or is a group whose keys all have one; keys inside a documented
    value (e.g. the requests of a documented `resources`) are that value's default."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    documented_parents: list[int] = []  # indents of documented keys enclosing the current line
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):(.*)$", line)
        if not match:
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3)
        documented_parents = [p for p in documented_parents if p < indent]
        if documented_parents:
            continue
        if any(c.lstrip().startswith("# --") for c in _comment_block_above(lines, i)):
            documented_parents.append(indent)
        elif not (rest.strip() == "" and i + 1 < len(lines) and _indent(lines[i + 1]) > indent):
            undocumented.append(key)
    assert not undocumented, f"values without a `# --` description: {undocumented}"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip()) if line.strip() else -1


def _comment_block_above(lines: list[str], index: int) -> list[str]:
    block = []
    for line in reversed(lines[:index]):
        if not line.lstrip().startswith("#"):
            break
        block.append(line)
    return block


def test_schema_closes_every_object_with_fixed_keys() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects = [
        path
        for path, node in _walk(schema, "$")
        if _has_fixed_keys(node) and node.get("additionalProperties") is not False
    ]
    assert not open_objects, f"objects with fixed keys that accept unknown ones: {open_objects}"


def _has_fixed_keys(node: dict[str, Any]) -> bool:
    return node.get("type") == "object" and bool(node.get("properties")) and "allOf" not in node


def _walk(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, child in node.items():
            found.extend(_walk(child, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found.extend(_walk(child, f"{path}[{i}]"))
    return found


# --- what the rendered objects promise ---


def test_triton_runs_on_gpu_nodes_with_the_probe_trio() -> None:
    objects = render("gpu")
    triton = one(objects, "Deployment", "-triton")
    pod = triton["spec"]["template"]["spec"]
    server = container(triton, "triton")
    assert server["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert server["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    startup = server["startupProbe"]
    assert startup["httpGet"]["path"] == "/v2/health/ready"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600, "model loading needs minutes, not seconds"
    # the Python-backend stubs' shared memory holds a full batch from the start (docs/serving.md)
    assert "--backend-config=python,shm-default-byte-size=67108864" in server["args"]


def test_cpu_scenario_asks_for_no_gpu() -> None:
    server = container(one(render("minimal"), "Deployment", "-triton"), "triton")
    assert "nvidia.com/gpu" not in json.dumps(server["resources"])
    assert "--allow-gpu-metrics=false" in server["args"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_gateway_writes_and_triton_reads_the_same_adapter_store(scenario: str) -> None:
    objects = render(scenario)
    gateway, triton = one(objects, "Deployment", "-gateway"), one(objects, "Deployment", "-triton")
    mounts = {
        name: next(m for m in container(d, name)["volumeMounts"] if m["name"] == "adapters")
        for name, d in (("gateway", gateway), ("triton", triton))
    }
    assert mounts["gateway"]["mountPath"] == mounts["triton"]["mountPath"]
    assert not mounts["gateway"].get("readOnly") and mounts["triton"]["readOnly"]
    env = {e["name"]: e.get("value") for e in container(gateway, "gateway")["env"]}
    assert env["TIPS_ADAPTER_STORE"] == mounts["gateway"]["mountPath"]
    volumes = [
        next(v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "adapters") for d in (gateway, triton)
    ]
    assert volumes[0] == volumes[1]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_gateway_pod_is_non_root_with_a_read_only_root_filesystem(scenario: str) -> None:
    gateway = one(render(scenario), "Deployment", "-gateway")
    pod = gateway["spec"]["template"]["spec"]
    security = container(gateway, "gateway")["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_gateway_finds_the_tokenizer_where_it_is_mounted(scenario: str) -> None:
    gateway = one(render(scenario), "Deployment", "-gateway")
    main = container(gateway, "gateway")
    path = next(e["value"] for e in main["env"] if e["name"] == "TIPS_TOKENIZER_PATH")
    assert any(m["mountPath"] == path for m in main["volumeMounts"])


def test_ha_scenario_scales_and_protects_both_tiers() -> None:
    objects = render("ha")
    hpas = {o["metadata"]["name"].rsplit("-", 1)[-1]: o for o in find(objects, "HorizontalPodAutoscaler")}
    assert set(hpas) == {"gateway", "triton"}
    assert hpas["gateway"]["spec"]["minReplicas"] == 3
    assert hpas["triton"]["spec"]["metrics"][0]["pods"]["metric"]["name"] == "tipsv2_triton_queue_time_per_request_us"
    assert {o["metadata"]["name"].rsplit("-", 1)[-1] for o in find(objects, "PodDisruptionBudget")} == {
        "gateway",
        "triton",
    }
    assert "replicas" not in one(objects, "Deployment", "-gateway")["spec"], "the HPA owns the replica count"


def test_ha_scenario_fetches_models_from_object_storage_and_uses_external_redis() -> None:
    objects = render("ha")
    fetch = container(one(objects, "Deployment", "-triton"), "fetch-models", init=True)
    assert fetch["args"][-2:] == [":s3:tipsv2-models/b14/repository", "/models/repository"]
    assert not find(objects, "StatefulSet")
    env = {e["name"]: e.get("value") for e in container(one(objects, "Deployment", "-gateway"), "gateway")["env"]}
    assert env["TIPS_REDIS__URL"] == "rediss://tipsv2-redis.example.internal:6380/0"


def test_engine_build_job_writes_the_marker_triton_waits_for() -> None:
    objects = render("gpu")
    job = one(objects, "Job")
    build = container(job, "build")
    wait = container(one(objects, "Deployment", "-triton"), "wait-for-engines", init=True)
    marker = {e["name"]: e["value"] for e in build["env"]}["MARKER"]
    assert marker == {e["name"]: e["value"] for e in wait["env"]}["MARKER"]
    assert "tipsv2 engines build" in build["command"][2] and 'touch "$MARKER"' in build["command"][2]
    assert build["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_a_changed_engine_build_is_a_new_job() -> None:
    names = {
        precision: one(render("gpu", "--set", f"engineBuild.precision={precision}"), "Job")["metadata"]["name"]
        for precision in ("fp16", "bf16")
    }
    assert names["fp16"] != names["bf16"]


def test_redis_keeps_an_append_only_file_on_a_volume() -> None:
    redis = one(render("gpu"), "StatefulSet", "-redis")
    args = container(redis, "redis")["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"


def test_network_policies_let_only_the_gateway_reach_triton_and_redis() -> None:
    objects = render("ha", "--set", "redis.enabled=true")
    policies = {o["metadata"]["name"].rsplit("-", 1)[-1]: o for o in find(objects, "NetworkPolicy")}
    gateway_selector = {"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "tipsv2", "app.kubernetes.io/instance": "ci", "app.kubernetes.io/component": "gateway"
    }}}  # fmt: skip
    inference = policies["triton"]["spec"]["ingress"][0]
    assert inference["from"] == [gateway_selector] and {p["port"] for p in inference["ports"]} == {8000, 8001}
    assert policies["redis"]["spec"]["ingress"][0]["from"] == [gateway_selector]


def test_job_submitter_role_can_create_and_watch_jobs_only_in_its_namespace() -> None:
    objects = render("gpu")
    role = one(objects, "Role", "-job-submitter")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}
    assert {"create", "get", "watch"} <= rules[(("batch",), ("jobs",))]
    assert not find(objects, "ClusterRole")
    binding = one(objects, "RoleBinding", "-job-submitter")
    assert binding["subjects"][0]["name"].endswith("-job-submitter")


def test_helm_test_pod_checks_health_and_readiness_of_the_gateway() -> None:
    pod = next(o for o in render("minimal") if o["kind"] == "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = " ".join(pod["spec"]["containers"][0]["command"])
    assert "/healthz" in script and "/readyz" in script and "http://ci-tipsv2-gateway:8080" in script


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_notes_render_for_each_scenario(scenario: str, tmp_path: Path) -> None:
    # `helm template` skips NOTES.txt, and `helm install --dry-run` needs a cluster: render it through `tpl`.
    chart = tmp_path / "tipsv2"
    shutil.copytree(CHART, chart)
    (chart / "notes.txt").write_text((CHART / "templates" / "NOTES.txt").read_text())
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ tpl (.Files.Get "notes.txt") . | quote }}\n'
    )
    rendered = helm_template("-f", str(values_file(scenario)), "--show-only", "templates/zz-notes.yaml", chart=chart)
    notes = yaml.safe_load(rendered.stdout)["data"]["notes"]
    assert "helm test ci -n tipsv2" in notes and "tipsv2 jobs submit adapt --release ci" in notes
