"""Dockerfiles: hadolint-clean, pinned bases, multi-stage, non-root, health-checked, built from
the repository root with the constraints file; small images without torch for the gateway and
frontend, CUDA images (plus a CPU target) for the workers.

The four workers share one recipe, ``services/Dockerfile``, built with ``WORKER`` and ``PORT``:
the per-component checks read it as each worker's build sees it (build arguments substituted).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.deploy import ROOT, WORKERS, run

from launcher.components import COMPONENTS

PORTS = {c.name: c.default_port for c in COMPONENTS}
READY = {c.name: c.ready_path for c in COMPONENTS}
WORKER_DOCKERFILE = ROOT / "services" / "Dockerfile"
DOCKERFILES = {
    **{w: WORKER_DOCKERFILE for w in WORKERS},
    "gateway": ROOT / "gateway" / "Dockerfile",
    "frontend": ROOT / "frontend" / "Dockerfile",
}
FILES = sorted(set(DOCKERFILES.values()))


def build_args(name: str) -> dict[str, str]:
    """What docker-compose.yml passes to build ``name`` (workers only)."""
    return {"WORKER": name, "PORT": str(PORTS[name])} if name in WORKERS else {}


def dockerfile_text(name: str) -> str:
    """The Dockerfile of ``name`` with its build arguments substituted, as its build reads it."""
    text: str = DOCKERFILES[name].read_text()
    for arg, value in build_args(name).items():
        text = text.replace(f"${{{arg}}}", value)
    return text


@dataclass
class Stage:
    base: str
    name: str | None
    lines: list[str] = field(default_factory=list)

    def instructions(self, op: str) -> list[str]:
        return [ln[len(op) + 1 :] for ln in self.lines if ln.upper().startswith(op + " ")]


def stages(name: str) -> list[Stage]:
    """The Dockerfile's stages, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile_text(name))
    out: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            out.append(Stage(m.group(1), m.group(2)))
        elif out:
            out[-1].lines.append(line)
    return out


def final_stages(name: str) -> dict[str, Stage]:
    """Target -> runtime stage: workers have gpu (the default, last) and cpu; others one."""
    st = stages(name)
    if name in WORKERS:
        by_name = {s.name: s for s in st}
        assert st[-1].name == "gpu", "the default target of a worker image must be gpu"
        return {"gpu": by_name["gpu"], "cpu": by_name["cpu"]}
    return {"default": st[-1]}


def root_base(name: str, stage: str) -> str:
    """The external image a stage starts from, following stage-on-stage FROMs."""
    by_name = {s.name: s for s in stages(name)}
    base = by_name[stage].base
    return root_base(name, base) if base in by_name else base


def test_hadolint_passes_on_every_dockerfile(hadolint: Path) -> None:
    r = run([hadolint, "--no-color", *FILES])
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_bases_are_pinned_and_multi_stage(name: str) -> None:
    st = stages(name)
    names = {s.name for s in st}
    assert len(st) >= 2, "multi-stage: build tools stay out of the runtime image"
    for s in st:
        if s.base in names:
            continue  # an earlier stage
        image, _, tag = s.base.rpartition(":")
        assert image and tag and tag != "latest", f"unpinned base {s.base}"
        assert re.search(r"\d", tag), f"tag {tag} names no version"


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_runtime_stages_are_non_root_and_health_checked(name: str) -> None:
    st = stages(name)
    by_name = {s.name: s for s in st}
    for target, stage in final_stages(name).items():
        users = stage.instructions("USER")
        assert users, f"{target}: no USER"
        uid = users[-1].split(":")[0]
        assert uid not in ("root", "0"), f"{target} runs as root"
        (hc,) = stage.instructions("HEALTHCHECK")
        env = " ".join(stage.instructions("ENV"))
        # A worker's check reads its port from the environment the build set (LVI_WORKER_PORT).
        port = (
            f"LVI_WORKER_PORT={PORTS[name]}" in env if name in WORKERS else str(PORTS[name]) in hc
        )
        assert READY[name] in hc and port, hc
        assert "urllib" in hc, "slim images have no curl: the check uses Python"
        (expose,) = stage.instructions("EXPOSE")
        assert expose == str(PORTS[name])
        cmd = stage.instructions("CMD")[-1]
        assert cmd.startswith("["), "exec form, so signals reach the server"
        if name in WORKERS:
            # The shell only expands the worker's name, then becomes the server (exec).
            assert cmd.startswith('["sh", "-c", "exec python -m launcher worker '), cmd
            assert '\\"$LVI_WORKER\\"' in cmd and f"LVI_WORKER={name}" in env, (cmd, env)
        else:
            assert '"launcher"' in cmd
        # No compiler or build stage leftovers: the venv comes from a build stage.
        (copy_venv,) = [c for c in stage.instructions("COPY") if "/opt/venv" in c]
        assert re.search(r"--from=(\S+)", copy_venv).group(1) in by_name  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_installs_only_its_extra_with_the_constraints(name: str) -> None:
    text = re.sub(r"\\\n\s*", " ", dockerfile_text(name))
    installs = re.findall(r"pip install [^&\n]*\.\[([a-z,]+)\]", text)
    assert installs and set(installs) == {name}, installs
    for line in re.findall(r"pip install [^&\n]*\.\[[a-z,]+\][^&\n]*", text):
        assert "-c requirements/constraints.txt" in line, line


@pytest.mark.parametrize("name", ["gateway", "frontend"])
def test_gateway_and_frontend_images_are_small(name: str) -> None:
    (runtime,) = final_stages(name).values()
    base = root_base(name, runtime.name or "")
    assert base.startswith("python:") and "slim" in base, base
    for s in stages(name):
        assert not s.base.startswith(("nvidia/", "pytorch/")), s.base
    text = dockerfile_text(name)
    assert "torch==" not in text and "torch must not be in this image" in text
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert not any("torch" in dep for dep in extras[name]), extras[name]


@pytest.mark.parametrize("name", WORKERS)
def test_worker_images_are_cuda_with_a_cpu_target(name: str) -> None:
    targets = final_stages(name)
    assert root_base(name, "gpu").startswith("nvidia/cuda:"), root_base(name, "gpu")
    assert root_base(name, "cpu").startswith("python:"), root_base(name, "cpu")
    text = dockerfile_text(name)
    assert "torch.version.cuda" in text, "the gpu build must refuse a torch without CUDA"
    assert "download.pytorch.org/whl/cpu" in text
    for target, stage in targets.items():
        env = " ".join(stage.instructions("ENV"))
        assert f"LVI_PROFILE={target}" in env
        assert "HF_HOME=/models" in env and "LVI_CACHE_DIR=/models" in env


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def ignored(rel: str, patterns: list[str]) -> bool:
    verdict = False
    for p in patterns:
        negate = p.startswith("!")
        pat = p.lstrip("!").removeprefix("**/")
        if (
            fnmatch.fnmatch(rel, pat)
            or fnmatch.fnmatch(rel, pat + "/*")
            or rel.startswith(pat + "/")
        ):
            verdict = not negate
    return verdict


def test_dockerignore_keeps_the_context_small_and_secret_free() -> None:
    patterns = dockerignore_patterns()
    for must in (".git", ".venv", ".env", "tests"):
        assert ignored(must, patterns), must
    assert not ignored(".env.example", patterns)


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_copies_come_from_the_repository_root(name: str) -> None:
    patterns = dockerignore_patterns()
    for stage in stages(name):
        for copy in stage.instructions("COPY"):
            if copy.startswith("--from"):
                continue
            *sources, _dest = copy.split()
            for src in sources:
                assert (ROOT / src).exists(), f"{src} is not in the repository root"
                assert not ignored(src, patterns), f"{src} is excluded by .dockerignore"


def test_one_recipe_builds_every_worker_from_its_arguments() -> None:
    """services/Dockerfile names no worker: the extra, the import check, the port and the
    command all come from WORKER and PORT, which every stage that uses them declares."""
    text = WORKER_DOCKERFILE.read_text()
    code = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    for name in WORKERS:
        assert name not in code.replace("llava-interactive-serve", ""), name
        assert str(PORTS[name]) not in code
    assert '".[${WORKER}]"' in code and "services.${WORKER}.app" in code
    assert "EXPOSE ${PORT}" in code and "LVI_WORKER_PORT=${PORT}" in code
    # A stage sees a build argument only when it declares it (after FROM).
    raw_stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    for raw in raw_stages:
        body = "\n".join(ln for ln in raw.splitlines()[1:] if not ln.lstrip().startswith("#"))
        for arg in ("WORKER", "PORT"):
            if f"${{{arg}}}" in body:
                assert re.search(rf"^ARG {arg}$", body, re.M), (arg, raw.splitlines()[0])
    # Without the arguments the build stops with a message instead of building a broken image.
    assert 'test -n "${WORKER}"' in code and 'test -n "${PORT}"' in code
    for name in WORKERS:
        assert not (ROOT / "services" / name / "Dockerfile").exists(), name


@pytest.mark.parametrize("name", WORKERS)
def test_each_worker_build_installs_its_extra_and_runs_itself(name: str) -> None:
    text = re.sub(r"\\\n\s*", " ", dockerfile_text(name))
    assert re.findall(r"pip install [^&\n]*\.\[([a-z,]+)\]", text) == [name, name]
    assert text.count(f"import launcher.cli, services.{name}.app") == 2
    for target, stage in final_stages(name).items():
        env = " ".join(stage.instructions("ENV"))
        assert f"LVI_WORKER={name}" in env and f"LVI_WORKER_PORT={PORTS[name]}" in env, target
        (expose,) = stage.instructions("EXPOSE")
        assert expose == str(PORTS[name])


def test_compose_builds_each_worker_with_its_name_and_port(
    compose_config: dict[str, dict[str, Any]],
) -> None:
    for variant, model in compose_config.items():
        for service, spec in model["services"].items():
            build = spec.get("build")
            if not build or not build["dockerfile"].startswith("services/"):
                continue
            assert build["dockerfile"] == "services/Dockerfile", (variant, service)
            worker = build["args"]["WORKER"]
            assert worker == service or service == "models-pull", (variant, service, worker)
            assert build["args"] == build_args(worker), (variant, service, build["args"])
            assert spec["image"].split("/")[-1].startswith(worker + ":"), spec["image"]
