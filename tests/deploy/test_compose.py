"""docker-compose.yml and its CPU variant: the real Compose v2 binary accepts them, and the
resolved model keeps the promises (GPUs, health checks, start order, persistence, isolation)."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
from support.deploy import COMPOSE_FILES, ROOT, WORKERS, compose_args, compose_env, run

from launcher.components import COMPONENTS

PORTS = {c.name: c.default_port for c in COMPONENTS}
APP = (*WORKERS, "gateway", "frontend")


@pytest.mark.parametrize("variant", sorted(COMPOSE_FILES))
def test_compose_config_is_valid(variant: str, compose_bin: Path, empty_env_file: Path) -> None:
    r = run(
        [*compose_args(compose_bin, variant, empty_env_file), "config", "-q"], env=compose_env()
    )
    assert r.returncode == 0, r.stderr


def test_api_keys_are_required(compose_bin: Path, empty_env_file: Path) -> None:
    env = {k: v for k, v in compose_env().items() if k != "GATEWAY_API_KEYS"}
    r = run([*compose_args(compose_bin, "gpu", empty_env_file), "config", "-q"], env=env)
    assert r.returncode != 0
    assert "GATEWAY_API_KEYS" in r.stderr and ".env.example" in r.stderr


def gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    res = service.get("deploy", {}).get("resources", {}).get("reservations", {})
    return [d for d in res.get("devices", []) if "gpu" in d.get("capabilities", [])]


def test_workers_reserve_a_configurable_gpu(
    compose_config: dict[str, dict[str, Any]], compose_bin: Path, empty_env_file: Path
) -> None:
    services = compose_config["gpu"]["services"]
    for w in WORKERS:
        (dev,) = gpu_devices(services[w])
        assert dev["driver"] == "nvidia" and dev["device_ids"] == ["0"], w
    for other in ("redis", "gateway", "frontend"):
        assert not gpu_devices(services[other])
    # The device ids come from .env: LLAVA_GPU_DEVICES=1 moves llava to GPU 1.
    r = run(
        [*compose_args(compose_bin, "gpu", empty_env_file), "config", "--format", "json"],
        env=compose_env(LLAVA_GPU_DEVICES="1"),
    )
    assert r.returncode == 0, r.stderr
    moved = json.loads(r.stdout)["services"]
    assert gpu_devices(moved["llava"])[0]["device_ids"] == ["1"]
    assert gpu_devices(moved["seem"])[0]["device_ids"] == ["0"]


def test_cpu_variant_has_no_gpu_and_cpu_images(compose_config: dict[str, dict[str, Any]]) -> None:
    services = compose_config["cpu"]["services"]
    for w in WORKERS:
        assert not gpu_devices(services[w]), w
        assert services[w]["image"].endswith("-cpu"), w
        assert services[w]["build"]["target"] == "cpu", w
        assert services[w]["environment"]["LVI_PROFILE"] == "cpu", w
    gpu = compose_config["gpu"]["services"]
    for w in WORKERS:
        assert gpu[w]["build"]["target"] == "gpu", w
        assert gpu[w]["environment"]["LVI_PROFILE"] == "gpu", w


@pytest.mark.parametrize("variant", sorted(COMPOSE_FILES))
def test_health_checks_and_start_order(
    variant: str, compose_config: dict[str, dict[str, Any]]
) -> None:
    services = compose_config[variant]["services"]
    for name in (*APP, "redis"):
        hc = services[name]["healthcheck"]
        assert hc["test"][0] in ("CMD", "CMD-SHELL") and not hc.get("disable"), name
    for w in WORKERS:
        assert "/v2/health/ready" in " ".join(services[w]["healthcheck"]["test"]), w
        assert f":{PORTS[w]}/" in " ".join(services[w]["healthcheck"]["test"]), w
        assert services[w]["depends_on"]["models-pull"]["condition"] == (
            "service_completed_successfully"
        )
    gw = services["gateway"]
    assert "/readyz" in " ".join(gw["healthcheck"]["test"])
    for dep in ("redis", *WORKERS):
        assert gw["depends_on"][dep]["condition"] == "service_healthy", dep
    assert services["frontend"]["depends_on"]["gateway"]["condition"] == "service_healthy"


def test_redis_persists_with_aof_on_a_volume(compose_config: dict[str, dict[str, Any]]) -> None:
    redis = compose_config["gpu"]["services"]["redis"]
    cmd = redis["command"]
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    (vol,) = redis["volumes"]
    assert vol["type"] == "volume" and vol["target"] == "/data"
    assert vol["source"] in compose_config["gpu"]["volumes"]


def test_workers_share_the_model_cache_volume(compose_config: dict[str, dict[str, Any]]) -> None:
    services = compose_config["gpu"]["services"]
    for name in (*WORKERS, "models-pull"):
        mounts = {(v["source"], v["target"]) for v in services[name]["volumes"]}
        assert ("models", "/models") in mounts, name
        env = services[name]["environment"]
        assert env["HF_HOME"].startswith("/models") and env["LVI_CACHE_DIR"].startswith("/models")
    pull = services["models-pull"]
    assert pull["command"][-3:] == ["launcher", "models", "pull"]
    for w in WORKERS:
        assert services[w]["environment"]["HF_HUB_OFFLINE"] == "1", w


def test_only_gateway_and_frontend_are_published(compose_config: dict[str, dict[str, Any]]) -> None:
    cfg = compose_config["gpu"]
    services = cfg["services"]
    assert cfg["networks"]["backend"]["internal"] is True
    for name in (*WORKERS, "redis"):
        assert not services[name].get("ports"), name
        assert set(services[name]["networks"]) == {"backend"}, name
    assert [p["target"] for p in services["gateway"]["ports"]] == [8000]
    assert [p["target"] for p in services["frontend"]["ports"]] == [7860]
    assert "backend" not in services["frontend"]["networks"]
    # Published on loopback unless .env says otherwise.
    assert services["gateway"]["ports"][0]["host_ip"] == "127.0.0.1"


def test_ui_signs_visitors_in_and_only_it_may_forward(
    compose_config: dict[str, dict[str, Any]],
) -> None:
    services = compose_config["gpu"]["services"]
    ui_env, gw_env = services["frontend"]["environment"], services["gateway"]["environment"]
    assert ui_env["FRONTEND_AUTH"] == "signin" and not ui_env.get("FRONTEND_API_KEY")
    # The gateway believes X-Forwarded-For from the UI's fixed address only, never a network.
    ui_ip = services["frontend"]["networks"]["edge"]["ipv4_address"]
    assert gw_env["GATEWAY_FORWARDED_ALLOW_IPS"] == ui_ip
    subnet = compose_config["gpu"]["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(ui_ip) in ipaddress.ip_network(subnet)


@pytest.mark.parametrize("variant", sorted(COMPOSE_FILES))
def test_images_are_pinned_and_containers_hardened(
    variant: str, compose_config: dict[str, dict[str, Any]]
) -> None:
    for name, svc in compose_config[variant]["services"].items():
        image = svc["image"]
        tag = image.rpartition(":")[2]
        assert ":" in image and tag != "latest", (name, image)
        assert svc.get("read_only") is True, name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name
        if name != "redis":
            assert svc.get("cap_drop") == ["ALL"], name


def test_every_compose_variable_is_in_env_example() -> None:
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M)
    )
    used: set[str] = set()
    for files in COMPOSE_FILES.values():
        for f in files:
            used |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / f).read_text()))
    assert used, "no variables found: the pattern is wrong"
    missing = sorted(used - documented)
    assert not missing, f"document these in .env.example: {missing}"


@pytest.mark.parametrize("var", ["REDIS_PASSWORD", "LVI_INTERNAL_TOKEN"])
def test_redis_password_and_internal_token_are_required(
    var: str, compose_bin: Path, empty_env_file: Path
) -> None:
    env = {k: v for k, v in compose_env().items() if k != var}
    r = run([*compose_args(compose_bin, "gpu", empty_env_file), "config", "-q"], env=env)
    assert r.returncode != 0
    assert var in r.stderr and ".env.example" in r.stderr


@pytest.mark.parametrize("variant", sorted(COMPOSE_FILES))
def test_redis_has_a_password_and_gateway_and_workers_the_token(
    variant: str, compose_config: dict[str, dict[str, Any]]
) -> None:
    services = compose_config[variant]["services"]
    redis = services["redis"]
    cmd = redis["command"]
    assert cmd[cmd.index("--requirepass") + 1] == "test-redis-password"
    assert cmd[cmd.index("--protected-mode") + 1] == "yes"
    assert redis["environment"]["REDISCLI_AUTH"] == "test-redis-password"
    gateway = services["gateway"]["environment"]
    assert gateway["GATEWAY_REDIS_URL"] == "redis://:test-redis-password@redis:6379/0"
    for name in (*WORKERS, "gateway"):
        assert services[name]["environment"]["LVI_INTERNAL_TOKEN"] == "test-internal-token", name
