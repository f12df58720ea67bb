"""The UI against the real stack: redis-server, the four workers (tiny profile), the gateway
and the frontend, each a real process on loopback; plus Debian's Chromium for Playwright.

A worker whose ``services/<name>/app.py`` is missing from the tree is left out (the gateway
then points at a dead port for it); the tests that need it skip.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.procs import ProcessFactory, ServerProcess

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("llava", "seem", "gligen", "inpaint")
API_KEY = "ui-key"
DEAD_URL = "http://127.0.0.1:9"
CHROMIUM = os.environ.get("LVI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts" / "frontend"


def present(name: str) -> bool:
    return (ROOT / "services" / name / "app.py").exists()


@dataclass
class UiStack:
    """The running processes; ``frontend.url`` is what the browser opens."""

    redis: ServerProcess
    gateway: ServerProcess
    frontend: ServerProcess
    workers: dict[str, ServerProcess] = field(default_factory=dict)

    def require(self, *names: str) -> None:
        for name in names:
            if name not in self.workers:
                pytest.skip(f"the {name} worker is not in the tree (services/{name}/app.py)")


@pytest.fixture(scope="session")
def ui_stack(procs: ProcessFactory) -> UiStack:
    """Start the workers in parallel, then the gateway, then the frontend."""
    if not (ROOT / "gateway" / "app.py").exists():
        pytest.skip("the gateway is not in the tree yet")
    redis = procs.redis()
    workers = {
        name: procs.lvi("worker", name, wait=False, env={"LVI_PROFILE": "tiny"})
        for name in WORKERS
        if present(name)
    }
    for w in workers.values():
        w.wait_ready(timeout=240)
    env = {
        "GATEWAY_REDIS_URL": redis.url,
        "GATEWAY_API_KEYS": f"ui:{API_KEY}",
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        "GATEWAY_BREAKER_RESET_S": "1",
    }
    for name in WORKERS:
        env[f"GATEWAY_{name.upper()}_URL"] = workers[name].url if name in workers else DEAD_URL
    gateway = procs.lvi("gateway", env=env, ready_path="/healthz")
    frontend = procs.lvi(
        "frontend",
        env={"FRONTEND_GATEWAY_URL": gateway.url, "FRONTEND_API_KEY": API_KEY},
        ready_path="/",
        timeout=120,
    )
    return UiStack(redis, gateway, frontend, workers)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Screenshots land here (``test-artifacts/`` is ignored by git; CI keeps it)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# pytest-playwright: Debian's Chromium, headless, never a downloaded browser.
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
        "headless": True,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1500, "height": 1100}}
