"""vLLM as the chat engine and one card for every worker: the compose override files and the
k8s overlays render, and keep their promises (pinned vLLM image on a GPU, weights from the
shared cache, readiness on /health, the llava worker forwarding to it without a GPU; every
worker on GPU 0 with allocator caps that the workers' own settings accept)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.deploy import WORKERS, compose_args, compose_env, run

from services.gligen.settings import GligenSettings
from services.inpaint.settings import InpaintSettings
from services.llava.settings import LlavaSettings
from services.seem.settings import SeemSettings

Doc = dict[str, Any]
VLLM_MODEL = "llava-hf/llava-1.5-7b-hf"
SETTINGS = {
    "llava": LlavaSettings,
    "seem": SeemSettings,
    "gligen": GligenSettings,
    "inpaint": InpaintSettings,
}


def gpu_devices(service: Doc) -> list[Doc]:
    res = (service.get("deploy") or {}).get("resources", {}).get("reservations", {})
    return [d for d in res.get("devices", []) if "gpu" in d.get("capabilities", [])]


def arg_after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


# -- compose ----------------------------------------------------------------------------------
def test_compose_vllm_serves_llava_on_a_gpu_from_the_shared_cache(
    compose_config: dict[str, Doc],
) -> None:
    services = compose_config["vllm"]["services"]
    vllm = services["vllm"]
    repo, _, tag = vllm["image"].rpartition(":")
    assert repo == "vllm/vllm-openai" and tag.startswith("v") and tag != "latest"
    assert arg_after(vllm["command"], "--model") == VLLM_MODEL
    (dev,) = gpu_devices(vllm)
    assert dev["driver"] == "nvidia"
    assert {(v["source"], v["target"]) for v in vllm["volumes"]} == {("models", "/models")}
    assert vllm["environment"]["HF_HOME"] == "/models/hf"
    assert vllm["environment"]["HF_HUB_OFFLINE"] == "1"
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    assert ":8000/" in " ".join(vllm["healthcheck"]["test"])
    assert vllm["depends_on"]["models-pull"]["condition"] == "service_completed_successfully"
    # Reachable only on the internal network, never published.
    assert set(vllm["networks"]) == {"backend"} and not vllm.get("ports")


def test_compose_vllm_turns_the_llava_worker_into_a_forwarder(
    compose_config: dict[str, Doc],
) -> None:
    for variant in ("vllm", "onecard-vllm"):
        llava = compose_config[variant]["services"]["llava"]
        env = llava["environment"]
        settings = LlavaSettings(
            backend=env["LLAVA_BACKEND"],
            upstream_url=env["LLAVA_UPSTREAM_URL"],
            upstream_model=env["LLAVA_UPSTREAM_MODEL"],
            max_concurrency=int(env["LLAVA_MAX_CONCURRENCY"]),
        )
        assert settings.backend == "openai" and settings.upstream_url == "http://vllm:8000/v1"
        assert settings.upstream_model == VLLM_MODEL
        assert settings.max_concurrency >= 8  # vLLM batches: the forwarder must not serialise
        assert not gpu_devices(llava), variant
        assert llava["depends_on"]["vllm"]["condition"] == "service_healthy"
        assert llava["depends_on"]["models-pull"]["condition"] == "service_completed_successfully"


def onecard_env(compose_bin: Path, env_file: Path, **extra: str) -> dict[str, Doc]:
    r = run(
        [*compose_args(compose_bin, "onecard", env_file), "config", "--format", "json"],
        env=compose_env(**extra),
    )
    assert r.returncode == 0, r.stderr
    services: dict[str, Doc] = json.loads(r.stdout)["services"]
    return services


def test_compose_onecard_puts_every_worker_on_gpu_0_with_caps(
    compose_config: dict[str, Doc], compose_bin: Path, empty_env_file: Path
) -> None:
    services = compose_config["onecard"]["services"]
    total = 0.0
    for w in WORKERS:
        (dev,) = gpu_devices(services[w])
        assert dev["device_ids"] == ["0"], w
        env = services[w]["environment"]
        assert env["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True", w
        # The worker's own settings class accepts what compose passes.
        s = SETTINGS[w](
            profile=env["LVI_PROFILE"],
            gpu_memory_fraction=float(env[f"{w.upper()}_GPU_MEMORY_FRACTION"]),
        )
        assert s.profile == "gpu-16gb" and s.gpu_memory_fraction is not None
        total += s.gpu_memory_fraction
    # Room is left for the four CUDA contexts, which the caps do not count.
    assert 0.8 <= total <= 0.95, total
    assert LlavaSettings(profile=services["llava"]["environment"]["LVI_PROFILE"]).quantization == (
        "4bit"
    )
    # .env cannot move a worker off the shared card, but can retune its cap.
    moved = onecard_env(
        compose_bin, empty_env_file, LLAVA_GPU_DEVICES="1", LLAVA_GPU_MEMORY_FRACTION="0.5"
    )
    assert gpu_devices(moved["llava"])[0]["device_ids"] == ["0"]
    assert moved["llava"]["environment"]["LLAVA_GPU_MEMORY_FRACTION"] == "0.5"


# -- kubernetes -------------------------------------------------------------------------------
def named(docs: list[Doc], kind: str, name: str) -> Doc:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_k8s_vllm_overlay(manifests: dict[str, list[Doc]]) -> None:
    docs = manifests["vllm"]
    spec = named(docs, "Deployment", "vllm")["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    repo, _, tag = c["image"].rpartition(":")
    assert repo == "vllm/vllm-openai" and tag.startswith("v")
    assert arg_after(c["args"], "--model") == VLLM_MODEL
    assert int(c["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert spec["nodeSelector"] and spec["tolerations"]
    for probe in ("startupProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["path"] == "/health"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["HF_HOME"] == "/models/hf" and env["HF_HUB_OFFLINE"] == "1"
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in spec["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"models": "lvi-models"}
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "models"]
    assert mount["mountPath"] == "/models" and mount["readOnly"] is True
    port = named(docs, "Service", "vllm")["spec"]["ports"][0]["port"]
    assert port == c["ports"][0]["containerPort"] == 8000

    llava = named(docs, "Deployment", "llava")["spec"]["template"]["spec"]
    main = llava["containers"][0]
    assert "nvidia.com/gpu" not in main["resources"]["limits"]
    assert "nodeSelector" not in llava and "tolerations" not in llava
    lenv = {e["name"]: e.get("value") for e in main["env"]}
    assert lenv["LLAVA_BACKEND"] == "openai"
    assert lenv["LLAVA_UPSTREAM_URL"] == f"http://vllm:{port}/v1"
    # The other workers keep their GPUs.
    for w in ("seem", "gligen", "inpaint"):
        w_spec = named(docs, "Deployment", w)["spec"]["template"]["spec"]
        assert int(w_spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]) == 1
    # Only the llava worker (and Prometheus) reach vLLM.
    policy = named(docs, "NetworkPolicy", "vllm-from-llava")["spec"]
    peers = [p for rule in policy["ingress"] for p in rule["from"]]
    in_namespace = [p for p in peers if "namespaceSelector" not in p]
    assert in_namespace == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "llava"}}}]


def test_k8s_onecard_overlay(manifests: dict[str, list[Doc]]) -> None:
    docs = manifests["onecard"]
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    data = cm["data"]
    assert data["LVI_PROFILE"] == "gpu-16gb"
    assert data["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    total = 0.0
    for w in WORKERS:
        s = SETTINGS[w](gpu_memory_fraction=float(data[f"{w.upper()}_GPU_MEMORY_FRACTION"]))
        assert s.gpu_memory_fraction is not None
        total += s.gpu_memory_fraction
        spec = named(docs, "Deployment", w)["spec"]["template"]["spec"]
        assert int(spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert 0.8 <= total <= 0.95, total
