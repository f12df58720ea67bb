"""Session-wide fixtures: offline mode, one tiny-model cache, real server processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests never download: without this, asking the hub for an id hangs ~24 s before failing.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

from support.procs import ProcessFactory


@pytest.fixture(scope="session")
def lvi_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One LVI_CACHE_DIR for the whole run: tiny models are built once, on first use."""
    path = tmp_path_factory.mktemp("lvi-cache")
    os.environ["LVI_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def procs(lvi_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessFactory]:
    """Factory of real server processes (tiny profile, text logs), all stopped at the end."""
    env = {
        **os.environ,
        "LVI_CACHE_DIR": str(lvi_cache),
        "LVI_PROFILE": "tiny",
        "LVI_LOG_JSON": "false",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    factory = ProcessFactory(env, tmp_path_factory.mktemp("proc-logs"))
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio, like the servers."""
    return "asyncio"
