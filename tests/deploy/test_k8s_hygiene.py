"""Cluster hygiene of the manifests (issue 13): Redis password from a Secret, the internal
token on the gateway and every worker, metrics on a port of their own, egress policies."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from support.deploy import OVERLAYS, ROOT, WORKERS, run

Doc = dict[str, Any]
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
SECRET_TEMPLATES = ("secret-redis.example.yaml", "secret-internal-token.example.yaml")


def named(docs: list[Doc], k: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == k and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {k} {name}, found {len(found)}"
    return found[0]


def container(docs: list[Doc], k: str, name: str) -> Doc:
    return dict(named(docs, k, name)["spec"]["template"]["spec"]["containers"][0])


def secret_ref(c: Doc, var: str) -> tuple[str, str]:
    """(secret name, key) that env var ``var`` of container ``c`` comes from."""
    (entry,) = [e for e in c.get("env", []) if e["name"] == var]
    ref = entry["valueFrom"]["secretKeyRef"]
    assert not ref.get("optional", False), var
    return ref["name"], ref["key"]


def config(docs: list[Doc]) -> dict[str, str]:
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    return dict(cm["data"])


def egress_of(docs: list[Doc], pod_name: str, component: str | None = None) -> list[Doc]:
    """Every egress rule of every policy selecting the pod (None: no egress policy at all)."""
    labels = {"app.kubernetes.io/name": pod_name}
    if component:
        labels["app.kubernetes.io/component"] = component
    rules: list[Doc] = []
    selected = False
    for p in docs:
        if p["kind"] != "NetworkPolicy" or "Egress" not in p["spec"].get("policyTypes", []):
            continue
        sel = p["spec"]["podSelector"].get("matchLabels", {})
        if sel and all(labels.get(k) == v for k, v in sel.items()):
            selected = True
            rules += p["spec"].get("egress", [])
    assert selected, f"no egress policy selects {pod_name}"
    return rules


def is_dns(rule: Doc) -> bool:
    dns_peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    return bool(rule.get("to") == [dns_peer] and rule["ports"] == DNS_PORTS)


def pod_targets(rule: Doc) -> list[tuple[Doc, list[Doc]]]:
    return [(to["podSelector"]["matchLabels"], rule["ports"]) for to in rule.get("to", [])]


@pytest.mark.parametrize("template", SECRET_TEMPLATES)
def test_secret_templates_validate_and_hold_no_real_value(template: str) -> None:
    path = ROOT / "k8s" / template
    r = run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", path])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CHANGE-ME" in path.read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_requires_a_password_from_a_secret(
    overlay: str, manifests: dict[str, list[Doc]]
) -> None:
    docs = manifests[overlay]
    redis = container(docs, "StatefulSet", "redis")
    args = redis["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert args[args.index("--protected-mode") + 1] == "yes"
    assert secret_ref(redis, "REDIS_PASSWORD") == ("lvi-redis", "REDIS_PASSWORD")
    # The probes authenticate (REDISCLI_AUTH) and need a PONG, which a wrong password never gets.
    assert secret_ref(redis, "REDISCLI_AUTH") == ("lvi-redis", "REDIS_PASSWORD")
    for probe in ("readinessProbe", "livenessProbe"):
        assert "PONG" in " ".join(redis[probe]["exec"]["command"]), probe
    # The gateway's URL carries the same password; no password-less URL is left in the config.
    gw = container(docs, "Deployment", "gateway")
    env = [e["name"] for e in gw["env"]]
    assert secret_ref(gw, "REDIS_PASSWORD") == ("lvi-redis", "REDIS_PASSWORD")
    (url,) = [e["value"] for e in gw["env"] if e["name"] == "GATEWAY_REDIS_URL"]
    assert url == "redis://:$(REDIS_PASSWORD)@redis:6379/0"
    assert env.index("REDIS_PASSWORD") < env.index("GATEWAY_REDIS_URL"), (
        "$(...) expands only earlier vars"
    )
    assert "GATEWAY_REDIS_URL" not in config(docs)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_and_every_worker_share_the_internal_token_secret(
    overlay: str, manifests: dict[str, list[Doc]]
) -> None:
    docs = manifests[overlay]
    for name in (*WORKERS, "gateway"):
        c = container(docs, "Deployment", name)
        assert secret_ref(c, "LVI_INTERNAL_TOKEN") == (
            "lvi-internal-token",
            "LVI_INTERNAL_TOKEN",
        ), name
    assert "LVI_INTERNAL_TOKEN" not in config(docs)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_have_their_own_port_and_only_it_is_open_to_monitoring(
    overlay: str, manifests: dict[str, list[Doc]]
) -> None:
    docs = manifests[overlay]
    cfg = config(docs)
    assert cfg["LVI_METRICS_PORT"] == "9100"
    assert cfg["LVI_METRICS_ON_MAIN_PORT"] == "false"
    for name in (*WORKERS, "gateway"):
        dep = named(docs, "Deployment", name)["spec"]["template"]
        ports = {p["name"]: p["containerPort"] for p in dep["spec"]["containers"][0]["ports"]}
        assert ports["metrics"] == 9100, name
        assert dep["metadata"]["annotations"]["prometheus.io/port"] == "9100", name
    policy = named(docs, "NetworkPolicy", "metrics-from-monitoring")
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 9100}]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_egress_policies(overlay: str, manifests: dict[str, list[Doc]]) -> None:
    docs = manifests[overlay]
    # Workers: DNS and nothing else (the vllm overlay lets llava reach vLLM, and only that).
    for w in WORKERS:
        rules = egress_of(docs, w, "worker")
        other = [r for r in rules if not is_dns(r)]
        assert len(rules) - len(other) >= 1, w
        if overlay == "vllm" and w == "llava":
            assert [t for r in other for t in pod_targets(r)] == [
                ({"app.kubernetes.io/name": "vllm"}, [{"protocol": "TCP", "port": 8000}])
            ]
        else:
            assert not other, f"{w} may reach more than DNS: {other}"
    # Redis opens no connection.
    assert egress_of(docs, "redis", "session-store") == []
    # The gateway: Redis, the workers, DNS.
    gw = [r for r in egress_of(docs, "gateway", "api") if not is_dns(r)]
    targets = [t for r in gw for t in pod_targets(r)]
    assert sorted(targets, key=json.dumps) == sorted(
        [
            ({"app.kubernetes.io/name": "redis"}, [{"protocol": "TCP", "port": 6379}]),
            (
                {"app.kubernetes.io/component": "worker"},
                [{"protocol": "TCP", "port": 8101, "endPort": 8104}],
            ),
        ],
        key=json.dumps,
    )
    # The frontend: the gateway and DNS.
    fe = [r for r in egress_of(docs, "frontend") if not is_dns(r)]
    assert [t for r in fe for t in pod_targets(r)] == [
        ({"app.kubernetes.io/name": "gateway"}, [{"protocol": "TCP", "port": 8000}])
    ]
    # The one way out to the internet: the models-pull Job, HTTPS only.
    pull = [r for r in egress_of(docs, "models-pull") if not is_dns(r)]
    assert pull == [{"ports": [{"protocol": "TCP", "port": 443}]}]
    internet = [
        p["metadata"]["name"]
        for p in docs
        if p["kind"] == "NetworkPolicy"
        for r in p["spec"].get("egress", [])
        if "to" not in r
    ]
    assert internet == ["models-pull-egress"]
    if overlay == "vllm":
        assert all(is_dns(r) for r in egress_of(docs, "vllm"))
