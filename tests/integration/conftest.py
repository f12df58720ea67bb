"""The whole stack as real processes: redis-server (AOF), every worker present in the tree
(tiny profile), and the gateway (``lvi gateway``), all on loopback.

A worker whose ``services/<name>/app.py`` does not exist is reported by :func:`require`
as a skip; every other failure to start is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.procs import ProcessFactory, ServerProcess

from lvi_client import LviClient

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("llava", "seem", "gligen", "inpaint")
KEYS = "alice:alice-key,bob:bob-key"
DEAD_URL = "http://127.0.0.1:9"


def present(name: str) -> bool:
    return (ROOT / "services" / name / "app.py").exists()


@dataclass
class Stack:
    """Running processes of one test session."""

    procs: ProcessFactory
    redis: ServerProcess
    workers: dict[str, ServerProcess] = field(default_factory=dict)
    gateways: list[ServerProcess] = field(default_factory=list)

    def gateway_env(self, **overrides: str) -> dict[str, str]:
        env = {
            "GATEWAY_REDIS_URL": self.redis.url,
            "GATEWAY_API_KEYS": KEYS,
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
            "GATEWAY_BREAKER_RESET_S": "1",
            "GATEWAY_REDIS_TIMEOUT_S": "2",
        }
        for name in WORKERS:
            w = self.workers.get(name)
            env[f"GATEWAY_{name.upper()}_URL"] = w.url if w else DEAD_URL
        env.update(overrides)
        return env

    def start_gateway(self, **overrides: str) -> ServerProcess:
        gw = self.procs.lvi("gateway", env=self.gateway_env(**overrides), ready_path="/healthz")
        self.gateways.append(gw)
        return gw


@pytest.fixture(scope="session")
def stack(procs: ProcessFactory) -> Stack:
    """Start every present worker in parallel, then one gateway."""
    redis = procs.redis(appendonly=True)
    s = Stack(procs, redis)
    for name in WORKERS:
        if present(name):
            s.workers[name] = procs.lvi("worker", name, wait=False)
    for w in s.workers.values():
        w.wait_ready(timeout=180)
    s.start_gateway()
    return s


@pytest.fixture(scope="session")
def require(stack: Stack) -> Callable[..., None]:
    """``require("gligen", ...)``: skip when a worker's code is not in the tree."""

    def check(*names: str) -> None:
        for name in names:
            if not present(name):
                pytest.fail(f"{name} worker not present (services/{name}/app.py)")
            assert name in stack.workers, f"{name} worker did not start"

    return check


@pytest.fixture(scope="session")
def gateway_url(stack: Stack) -> str:
    return stack.gateways[0].url


@pytest.fixture
def alice(gateway_url: str) -> Iterator[LviClient]:
    with LviClient(gateway_url, "alice-key", timeout=120) as c:
        yield c


@pytest.fixture
def bob(gateway_url: str) -> Iterator[LviClient]:
    with LviClient(gateway_url, "bob-key", timeout=120) as c:
        yield c
