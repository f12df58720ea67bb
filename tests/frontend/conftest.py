"""The UI against the real stack: redis-server, the four workers (tiny profile), the gateway
and the frontend, each a real process on loopback; plus Debian's Chromium for Playwright.

A worker whose ``services/<name>/app.py`` is missing from the tree is left out (the gateway
then points at a dead port for it); the tests that need it skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.procs import ProcessFactory, ServerProcess

from frontend.handlers import Controller, ImageFiles
from tests.frontend.fakes import FakeGateway

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

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
                pytest.fail(f"the {name} worker is not in the tree (services/{name}/app.py)")


@pytest.fixture(scope="session")
def ui_stack(procs: ProcessFactory) -> UiStack:
    """Start the workers in parallel, then the gateway, then the frontend."""
    if not (ROOT / "gateway" / "app.py").exists():
        pytest.fail("the gateway is not in the tree")
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
        env={
            "FRONTEND_GATEWAY_URL": gateway.url,
            "FRONTEND_AUTH": "single-user",
            "FRONTEND_API_KEY": API_KEY,
        },
        ready_path="/",
        timeout=120,
    )
    return UiStack(redis, gateway, frontend, workers)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots land here: ``$LVI_TEST_ARTIFACTS/frontend`` when set (CI keeps that
    folder), else a pytest temporary folder; never inside the checkout."""
    base = os.environ.get("LVI_TEST_ARTIFACTS")
    folder = Path(base) / "frontend" if base else tmp_path_factory.mktemp("frontend-shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, never a downloaded browser.

    Module-scoped on purpose (not pytest-playwright's session-wide fixtures): Playwright's sync
    API keeps an event loop running in the main thread while it is open, which would break
    every async test that runs after this folder. Closing it here ends that loop.
    """
    from playwright.sync_api import sync_playwright

    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if exe is None:
        pytest.fail("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def fake() -> FakeGateway:
    """The in-memory gateway of the handler tests (no servers)."""
    return FakeGateway()


@pytest.fixture
def ctl(fake: FakeGateway, tmp_path: Path) -> Controller:
    """A UI controller over :func:`fake`, with its own image-file folder."""
    return Controller(fake, ImageFiles(tmp_path / "files"))


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A fresh browser context (cookies, local storage) per test."""
    context = chromium.new_context(viewport={"width": 1500, "height": 1100})
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()
