"""Smoke test with a real Docker engine (``make smoke-docker``): build every image from the
repository root with the ``docker`` Python SDK, start the stack on a private network (tiny
models, so no downloads and no GPU), wait until every container's own HEALTHCHECK says
healthy, and open a session through the gateway.

Skipped, with the reason, where no engine is reachable (CI machines have none).
``LVI_SMOKE_TARGET=gpu`` builds the CUDA worker images instead of the CPU ones (the stack still
runs the tiny profile, on the CPU unless the engine passes GPUs through).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.deploy import ROOT, WORKERS

from launcher.components import COMPONENTS

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(3600)]

PORTS = {c.name: c.default_port for c in COMPONENTS}
DOCKERFILES = {
    **{w: "services/Dockerfile" for w in WORKERS},  # one recipe, built with WORKER and PORT
    "gateway": "gateway/Dockerfile",
    "frontend": "frontend/Dockerfile",
}
REDIS_IMAGE = "redis:7.4.2-alpine"
API_KEY = "smoke-" + uuid.uuid4().hex
READY_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def docker_client() -> Iterator[Any]:
    try:
        import docker
    except ImportError:  # pragma: no cover - `make install` installs it
        pytest.fail("the docker SDK is not installed in the venv: run `make install`")
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as e:
        pytest.skip(
            f"no Docker engine reachable ({type(e).__name__}: {e}); "
            "`make smoke-docker` runs this test on a machine with one"
        )
    yield client
    client.close()


def build(client: Any, name: str, target: str) -> str:
    """Build one image from the repository root; return its tag. Shows the log on failure."""
    import docker

    tag = f"lvi-smoke/{name}:{target}"
    try:
        client.images.build(
            path=str(ROOT),
            dockerfile=DOCKERFILES[name],
            target=target if name in WORKERS else None,
            buildargs={"WORKER": name, "PORT": str(PORTS[name])} if name in WORKERS else None,
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
        )
    except docker.errors.BuildError as e:
        log = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in e.build_log)
        pytest.fail(f"building {name} failed:\n{log[-6000:]}")
    return tag


def health(container: Any) -> str:
    container.reload()
    state = container.attrs["State"]
    if state["Status"] in ("exited", "dead"):
        return "exited"
    return str(state.get("Health", {}).get("Status", "none"))


def test_images_build_and_the_stack_becomes_healthy(docker_client: Any) -> None:
    client = docker_client
    target = os.environ.get("LVI_SMOKE_TARGET", "cpu")
    tags = {name: build(client, name, target) for name in DOCKERFILES}
    for name in ("gateway", "frontend"):
        # The small images really are small: no torch, far below the worker images.
        size_mb = client.images.get(tags[name]).attrs["Size"] / 1e6
        assert size_mb < 1500, f"{name} image is {size_mb:.0f} MB"
    client.images.pull(REDIS_IMAGE)

    run_id = uuid.uuid4().hex[:8]
    network = client.networks.create(f"lvi-smoke-{run_id}")
    started: list[Any] = []
    hardening: dict[str, Any] = {
        "read_only": True,
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "tmpfs": {"/tmp": "mode=1777", "/models": "mode=1777"},
    }

    def start(name: str, image: str, env: dict[str, str], **kw: Any) -> Any:
        container = client.containers.run(
            image,
            name=f"lvi-smoke-{run_id}-{name}",
            detach=True,
            network=network.name,
            environment=env,
            **kw,
        )
        # Reachable by its plain name, like in docker-compose.yml.
        network.disconnect(container)
        network.connect(container, aliases=[name])
        started.append(container)
        return container

    try:
        start("redis", REDIS_IMAGE, {}, command=["redis-server", "--appendonly", "yes"])
        workers = {
            w: start(
                w,
                tags[w],
                {
                    "LVI_PROFILE": "tiny",
                    "HF_HUB_OFFLINE": "1",
                    "LVI_LOG_JSON": "false",
                    "HOME": "/tmp",
                },
                shm_size="256m",
                **hardening,
            )
            for w in WORKERS
        }
        gateway = start(
            "gateway",
            tags["gateway"],
            {
                "GATEWAY_API_KEYS": f"smoke:{API_KEY}",
                "HOME": "/tmp",
                "GATEWAY_REDIS_URL": "redis://redis:6379/0",
                **{f"GATEWAY_{w.upper()}_URL": f"http://{w}:{PORTS[w]}" for w in WORKERS},
            },
            ports={"8000/tcp": ("127.0.0.1", None)},
            **hardening,
        )
        frontend = start(
            "frontend",
            tags["frontend"],
            {
                "FRONTEND_GATEWAY_URL": "http://gateway:8000",
                "FRONTEND_AUTH": "single-user",
                "FRONTEND_API_KEY": API_KEY,
                "HOME": "/tmp",
            },
            **hardening,
        )

        pending = {**workers, "gateway": gateway, "frontend": frontend}
        deadline = time.monotonic() + READY_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            for name, container in list(pending.items()):
                status = health(container)
                if status == "healthy":
                    del pending[name]
                elif status in ("exited", "unhealthy"):
                    logs = container.logs(tail=80).decode(errors="replace")
                    pytest.fail(f"{name} is {status}:\n{logs}")
            time.sleep(3)
        assert not pending, f"not healthy after {READY_TIMEOUT_S}s: {sorted(pending)}"

        gateway.reload()
        host_port = gateway.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        base = f"http://127.0.0.1:{host_port}"
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        r = httpx.post(
            f"{base}/v1/sessions", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
        )
        assert r.status_code == 201, r.text
        assert httpx.post(f"{base}/v1/sessions", timeout=10).status_code == 401
        # Containers really run as the image's non-root user.
        for container in started[1:]:
            container.reload()
            assert container.attrs["Config"]["User"].split(":")[0] not in ("", "0", "root")
    finally:
        for container in reversed(started):
            try:
                container.remove(force=True)
            except Exception:
                pass
        network.remove()
