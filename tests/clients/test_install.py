"""``pip install ./clients/python`` in a fresh virtual environment gives a working client, and
none of the server's dependencies (numpy, Pillow, FastAPI, torch).

The venv is made without ``--system-site-packages``, so nothing leaks in from the project's
environment. pip resolves httpx, pydantic and httpx-sse from the package index (with pip's own
cache), pinned by requirements/constraints.txt; on a machine without an index, point
``LVI_WHEELHOUSE`` at a folder of wheels (``pip wheel -w DIR ./clients/python`` made on a
machine with one) and the install runs with ``--no-index --find-links`` instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs inside the fresh venv: the SDK works (a session, a typed error, a streamed edit) against
# a fake gateway on httpx's MockTransport, and the server's dependencies are absent.
PROBE = r"""
import importlib.util, json
import httpx
from lvi_client import ConflictError, LviClient

absent = [m for m in ("numpy", "PIL", "fastapi", "torch", "lvi") if importlib.util.find_spec(m)]
assert not absent, f"importable in the SDK's venv: {absent}"

VERSION = {"id": 2, "parent": 1, "operation": "remove", "image_hash": "h",
           "content_type": "image/png", "bytes": 1, "width": 1, "height": 1,
           "created_at": 0.0, "image_url": "/v1/sessions/s/images/2"}

def gateway(request):
    if request.url.path == "/v1/sessions/s/undo":
        body = {"error": {"type": "conflict_error", "message": "moved", "code": "head_moved"}}
        return httpx.Response(409, json=body)
    events = ("event: progress\r\ndata: {\"stage\": \"inpaint\"}\r\n\r\n"
              "event: result\r\ndata: " + json.dumps(VERSION) + "\r\n\r\n")
    return httpx.Response(200, content=events.encode(),
                          headers={"content-type": "text/event-stream"})

seen = []
with LviClient("http://gw", transport=httpx.MockTransport(gateway)) as lvi:
    assert lvi.remove("s", "m", on_progress=seen.append).id == 2 and len(seen) == 1
    try:
        lvi.undo("s")
    except ConflictError as e:
        assert e.code == "head_moved"
    else:
        raise AssertionError("no ConflictError")
print("sdk ok")
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sdk_installs_alone_in_a_fresh_venv(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    cmd = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    cmd += ["-c", str(ROOT / "requirements" / "constraints.txt")]
    wheelhouse = os.environ.get("LVI_WHEELHOUSE")
    if wheelhouse:
        cmd += ["--no-index", "--find-links", wheelhouse]
    # A copy of the source, so the build leaves nothing (build/, *.egg-info) in the checkout.
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("*.egg-info", "build", "__pycache__")
    shutil.copytree(ROOT / "clients" / "python", src, ignore=skip)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run([*cmd, str(src)], env=env, capture_output=True, text=True, timeout=800)
    assert install.returncode == 0, install.stdout + install.stderr
    probe = subprocess.run(
        [str(python), "-c", PROBE],
        env=env,
        cwd=tmp_path,  # not the checkout: its lvi/ must not be importable from the cwd
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0 and "sdk ok" in probe.stdout, probe.stdout + probe.stderr
