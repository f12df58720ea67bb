"""Sessions on a real three-node Redis Cluster (GATEWAY_REDIS_CLUSTER=true): every key of a
session shares one hash tag, so the Lua commits work unchanged."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest
from support import gw as img
from support.procs import ProcessFactory, RedisProcess, free_port

from lvi_client import ConflictError, LviClient

W, H = 64, 48


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is valid and free too."""
    for _ in range(200):
        port = free_port()
        if port > 55000:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _cluster(procs: ProcessFactory, n: int = 3) -> list[RedisProcess]:
    exe, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if exe is None or cli is None:
        pytest.fail("redis-server and redis-cli are needed (apt-get install redis-server)")
    nodes = []
    for _ in range(n):
        port = _cluster_port()
        data = procs.log_dir / f"cluster-{port}"
        data.mkdir()
        args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
        args += ["--save", "", "--appendonly", "no", "--cluster-enabled", "yes"]
        node = RedisProcess("redis-cluster", args, dict(os.environ), port, data / "log", "")
        procs.servers.append(node)
        nodes.append(node.start())
    addrs = [f"127.0.0.1:{node.port}" for node in nodes]
    subprocess.run(
        [cli, "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = subprocess.run(
            [cli, "-p", str(nodes[0].port), "cluster", "info"], capture_output=True, text=True
        ).stdout
        if "cluster_state:ok" in info:
            return nodes
        time.sleep(0.2)
    raise RuntimeError(f"cluster did not form:\n{info}")


def test_sessions_on_redis_cluster(procs: ProcessFactory, make_gateway) -> None:  # type: ignore[no-untyped-def]
    nodes = _cluster(procs)
    tc = make_gateway(
        redis_url=f"redis://127.0.0.1:{nodes[0].port}",
        redis_cluster=True,
        rate_limit_per_minute=6000,
    )
    c = LviClient("http://gateway", "alice-key", http_client=tc)
    sessions = [c.create_session() for _ in range(6)]  # spread over the slots of every node
    for s in sessions:
        v1 = c.upload_image(s.id, img.png(img.photo(W, H)))
        m = c.upload_mask(s.id, img.mask_png(img.rect_mask(W, H, (8, 8, 24, 24))))
        v2 = c.remove(s.id, m.mask_id, if_match=v1.id, idempotency_key="once")
        assert c.remove(s.id, m.mask_id, if_match=v1.id, idempotency_key="once") == v2
        with pytest.raises(ConflictError):
            c.remove(s.id, m.mask_id, if_match=v1.id)
        assert c.undo(s.id).id == v1.id and c.redo(s.id).id == v2.id
        got = c.get_session(s.id)
        assert [v.id for v in got.versions] == [1, 2] and got.masks[0].mask_id == m.mask_id
    assert tc.get("/readyz").json()["redis"] == "ok"
    c.delete_session(sessions[0].id)
