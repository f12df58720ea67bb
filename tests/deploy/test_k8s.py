"""k8s/: both overlays render with kustomize, pass strict schema validation, and keep the
structural promises of the deployment (GPUs, probes, security, network isolation, scaling)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from support.deploy import OVERLAYS, ROOT, WORKERS, run

from launcher.components import COMPONENTS

Doc = dict[str, Any]
PORTS = {c.name: c.default_port for c in COMPONENTS}


def kind(docs: list[Doc], k: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == k]


def named(docs: list[Doc], k: str, name: str) -> Doc:
    found = [d for d in kind(docs, k) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {k} {name}, found {len(found)}"
    return found[0]


def pod_templates(docs: list[Doc]) -> list[tuple[str, Doc]]:
    """(kind/name, pod spec) of every workload."""
    out = []
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            out.append((f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]))
    return out


def containers(spec: Doc) -> list[Doc]:
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_strict_schema_validation(
    overlay: str, rendered: dict[str, Path], manifests: dict[str, list[Doc]]
) -> None:
    r = run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", rendered[overlay]])
    assert r.returncode == 0, r.stdout + r.stderr
    kinds = {d["kind"] for d in manifests[overlay]}
    assert {
        "Namespace",
        "ConfigMap",
        "Service",
        "Deployment",
        "StatefulSet",
        "Job",
        "PersistentVolumeClaim",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
        "NetworkPolicy",
    } <= kinds


def test_secret_template_validates_and_is_not_deployed(manifests: dict[str, list[Doc]]) -> None:
    r = run(
        [
            sys.executable,
            "-m",
            "kubernetes_validate",
            "--strict",
            "--quiet",
            ROOT / "k8s" / "secret-api-keys.example.yaml",
        ]
    )
    assert r.returncode == 0, r.stdout + r.stderr
    for docs in manifests.values():
        assert not kind(docs, "Secret"), "no API key may ship with the manifests"


def test_everything_in_one_namespace(manifests: dict[str, list[Doc]]) -> None:
    for docs in manifests.values():
        assert (
            named(docs, "Namespace", "lvi")["metadata"]["labels"][
                "pod-security.kubernetes.io/enforce"
            ]
            == "restricted"
        )
        for d in docs:
            if d["kind"] != "Namespace":
                assert d["metadata"].get("namespace") == "lvi", d["metadata"]["name"]


def test_gpu_overlay_gives_each_worker_a_gpu_on_gpu_nodes(manifests: dict[str, list[Doc]]) -> None:
    docs = manifests["gpu"]
    for w in WORKERS:
        spec = named(docs, "Deployment", w)["spec"]["template"]["spec"]
        (main,) = [c for c in spec["containers"] if c["name"] == w]
        assert int(main["resources"]["limits"]["nvidia.com/gpu"]) >= 1, w
        assert spec["nodeSelector"], w
        assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"]), w
    assert (
        named(docs, "ConfigMap", next(d["metadata"]["name"] for d in kind(docs, "ConfigMap")))[
            "data"
        ]["LVI_PROFILE"]
        == "gpu"
    )


def test_cpu_overlay_asks_for_no_gpu(manifests: dict[str, list[Doc]]) -> None:
    docs = manifests["cpu"]
    for _, spec in pod_templates(docs):
        assert "nodeSelector" not in spec and "tolerations" not in spec
        for c in containers(spec):
            assert "nvidia.com/gpu" not in c.get("resources", {}).get("limits", {})
    (cm,) = kind(docs, "ConfigMap")
    assert cm["data"]["LVI_PROFILE"] == "cpu"
    # Every use of a worker image (containers, init containers, the models-pull Job) is the
    # CPU build.
    for where, spec in pod_templates(docs):
        for c in containers(spec):
            if c["image"].split(":")[0] in {f"lvi/{w}" for w in WORKERS}:
                assert c["image"].endswith("-cpu"), (where, c["image"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_on_every_deployment(overlay: str, manifests: dict[str, list[Doc]]) -> None:
    docs = manifests[overlay]
    deployments = kind(docs, "Deployment")
    names = {d["metadata"]["name"] for d in deployments}
    # The vllm overlay adds vLLM's own server (its probes are checked below like the others').
    assert names - {"vllm"} == {*WORKERS, "gateway", "frontend"}
    for d in deployments:
        for c in d["spec"]["template"]["spec"]["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in c, f"{d['metadata']['name']}: no {probe}"
    for w in WORKERS:
        c = named(docs, "Deployment", w)["spec"]["template"]["spec"]["containers"][0]
        assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        # A model load may take minutes: the startup probe must allow it.
        start = c["startupProbe"]
        assert start["periodSeconds"] * start["failureThreshold"] >= 300
    gw = named(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    assert gw["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gw["livenessProbe"]["httpGet"]["path"] == "/healthz"
    redis = named(docs, "StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]
    assert "readinessProbe" in redis and "livenessProbe" in redis


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_non_root_read_only_and_bounded(
    overlay: str, manifests: dict[str, list[Doc]]
) -> None:
    for where, spec in pod_templates(manifests[overlay]):
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True, where
        assert psc.get("runAsUser", 1) != 0, where
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec.get("automountServiceAccountToken") is False, where
        for c in containers(spec):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (where, c["name"])
            assert sc["readOnlyRootFilesystem"] is True, (where, c["name"])
            assert sc["capabilities"]["drop"] == ["ALL"], (where, c["name"])
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]), (where, c["name"])
            assert "memory" in res["limits"], (where, c["name"])
            # A read-only root needs somewhere to write.
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts or c["name"] == "redis", (where, c["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned(overlay: str, manifests: dict[str, list[Doc]]) -> None:
    for where, spec in pod_templates(manifests[overlay]):
        for c in containers(spec):
            image = c["image"]
            name, _, tag = image.rpartition(":")
            assert "@sha256:" in image or (name and tag and tag != "latest"), (where, image)
            assert c.get("imagePullPolicy") != "Always" or "@sha256:" in image


def test_network_policies_isolate_workers_and_redis(manifests: dict[str, list[Doc]]) -> None:
    docs = manifests["gpu"]
    policies = kind(docs, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert deny and deny[0]["spec"]["policyTypes"] == ["Ingress"], "no default-deny policy"

    def allowed_peers(labels: dict[str, str]) -> list[Doc]:
        peers: list[Doc] = []
        for p in policies:
            sel = p["spec"]["podSelector"]
            if sel and selects(sel, labels):
                for rule in p["spec"].get("ingress", []):
                    peers += rule.get("from", [{}])  # a rule without `from` allows everyone
        return peers

    for name, component in [*((w, "worker") for w in WORKERS), ("redis", "session-store")]:
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}
        peers = allowed_peers(labels)
        assert peers, name
        in_namespace = [p for p in peers if "namespaceSelector" not in p]
        assert in_namespace and all(
            p == {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}
            for p in in_namespace
        ), f"{name} is reachable by more than the gateway: {in_namespace}"
        # The only other peer: Prometheus, for /metrics (the queue-depth autoscaling).
        for p in peers:
            if "namespaceSelector" in p:
                assert p["namespaceSelector"]["matchLabels"] == {
                    "kubernetes.io/metadata.name": "monitoring"
                }, (name, p)


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
        if expr["operator"] == "Exists" and value is None:
            return False
    return True


def test_gateway_is_highly_available(manifests: dict[str, list[Doc]]) -> None:
    docs = manifests["gpu"]
    assert named(docs, "Deployment", "gateway")["spec"]["replicas"] >= 2
    hpa = named(docs, "HorizontalPodAutoscaler", "gateway")
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > 2
    pdb = named(docs, "PodDisruptionBudget", "gateway")
    assert pdb["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "gateway"}
    env = named(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]["env"]
    keys = next(e for e in env if e["name"] == "GATEWAY_API_KEYS")
    assert keys["valueFrom"]["secretKeyRef"]["name"] == "lvi-api-keys"


def test_workers_autoscale_on_queue_depth_with_cpu_fallback(
    manifests: dict[str, list[Doc]],
) -> None:
    for w in WORKERS:
        hpa = named(manifests["gpu"], "HorizontalPodAutoscaler", w)
        assert hpa["spec"]["scaleTargetRef"]["name"] == w
        metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
        assert metrics["Pods"]["pods"]["metric"]["name"] == "lvi_queue_depth"
        assert metrics["Resource"]["resource"]["name"] == "cpu"
    rule = (ROOT / "k8s" / "monitoring" / "prometheus-adapter-values.yaml").read_text()
    assert "lvi_queue_depth" in rule
    # ...and the metric really is the worker's: its runtime exports this gauge.
    assert '"lvi_queue_depth"' in (ROOT / "lvi" / "worker.py").read_text()


def test_redis_is_a_statefulset_with_aof_on_a_volume(manifests: dict[str, list[Doc]]) -> None:
    sts = named(manifests["gpu"], "StatefulSet", "redis")
    c = sts["spec"]["template"]["spec"]["containers"][0]
    args = c["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in c["volumeMounts"]


def test_model_cache_is_filled_by_a_job_and_shared(manifests: dict[str, list[Doc]]) -> None:
    docs = manifests["gpu"]
    named(docs, "PersistentVolumeClaim", "lvi-models")
    job = named(docs, "Job", "models-pull")["spec"]["template"]["spec"]
    assert job["containers"][0]["command"][-3:] == ["launcher", "models", "pull"]
    assert any(
        v.get("persistentVolumeClaim", {}).get("claimName") == "lvi-models" for v in job["volumes"]
    )
    for w in WORKERS:
        spec = named(docs, "Deployment", w)["spec"]["template"]["spec"]
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in spec["volumes"]
            if "persistentVolumeClaim" in v
        ]
        assert claims == ["lvi-models"], w
        (init,) = spec["initContainers"]
        assert "models pull --check" in " ".join(init["command"]), w


def test_services_ingress_and_ports_match_the_stack_table(manifests: dict[str, list[Doc]]) -> None:
    docs = manifests["gpu"]
    for name in (*WORKERS, "gateway", "frontend"):
        svc = named(docs, "Service", name)
        assert svc["spec"]["ports"][0]["port"] == PORTS[name], name
        dep = named(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert dep["ports"][0]["containerPort"] == PORTS[name], name
    (ingress,) = kind(docs, "Ingress")
    backends = {
        p["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert backends == {"gateway", "frontend"}, "workers must never be exposed"
