"""Fixtures of the gateway's tests: a real redis-server, the real inpaint worker, and the
gateway app in-process (Starlette's TestClient) driven through the SDK.

Workers other than inpaint point at a closed port: these tests are about the gateway's own
behaviour (auth, sessions, limits, faults); tests/integration runs every worker for real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.procs import ProcessFactory, ServerProcess, free_port

from gateway.app import create_app
from gateway.settings import GatewaySettings
from lvi_client import LviClient

KEYS = "alice:alice-key,bob:bob-key,carol:carol-key"
DEAD_URL = "http://127.0.0.1:9"  # nothing listens on the discard port: connection refused


@pytest.fixture(scope="session")
def redis_server(procs: ProcessFactory) -> ServerProcess:
    return procs.redis()


@pytest.fixture(scope="session")
def inpaint_worker(procs: ProcessFactory) -> ServerProcess:
    return procs.lvi("worker", "inpaint")


def gateway_settings(redis_url: str, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "api_keys": KEYS,
        "rate_limit_per_minute": 0,
        "llava_url": DEAD_URL,
        "seem_url": DEAD_URL,
        "gligen_url": DEAD_URL,
        "inpaint_url": DEAD_URL,
        "connect_retries": 0,
        "log_json": False,
    }
    values.update(overrides)
    return GatewaySettings(**values)


Factory = Callable[..., TestClient]


@pytest.fixture
def make_gateway(redis_server: ServerProcess, inpaint_worker: ServerProcess) -> Iterator[Factory]:
    """``make_gateway(**settings)`` -> a running in-process gateway (TestClient)."""
    opened: list[TestClient] = []

    def make(*, clients: Any = None, **overrides: Any) -> TestClient:
        overrides.setdefault("inpaint_url", inpaint_worker.url)
        redis_url = overrides.pop("redis_url", redis_server.url)
        app = create_app(gateway_settings(redis_url, **overrides), clients=clients)
        tc = TestClient(app, base_url="http://gateway", raise_server_exceptions=False)
        tc.__enter__()
        opened.append(tc)
        return tc

    yield make
    for tc in opened:
        tc.__exit__(None, None, None)


@pytest.fixture
def gw(make_gateway: Factory) -> TestClient:
    return make_gateway()


@pytest.fixture
def alice(gw: TestClient) -> LviClient:
    return LviClient("http://gateway", "alice-key", http_client=gw)


@pytest.fixture
def bob(gw: TestClient) -> LviClient:
    return LviClient("http://gateway", "bob-key", http_client=gw)


__all__ = ["free_port"]
