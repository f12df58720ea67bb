"""The crash drill of issue 13 under ``lvi up`` (tiny profile, real processes: redis-server,
the inpaint worker and the gateway as ``lvi up`` starts them, on their own ports and their own
Redis folder), a row of the fault report (``make fault``):

1. SIGKILL the inpaint worker: ``lvi up`` says so and restarts it; meanwhile the gateway answers
   503 for ``remove`` while reading and writing a session keeps working; then ``remove`` works
   again;
2. SIGKILL the Redis under ``lvi up``: restarted from its append-only file, the session and its
   versions are there;
3. SIGKILL ``lvi up`` itself: its children go with it; a new ``lvi up`` on the same cache and
   Redis folder serves the session, its image byte for byte, with the same API key.

The figures (seconds from each kill to the restart, readiness and the first good answer) go
in the report. The helpers that run ``lvi up`` are shared with tests/launcher
(:mod:`support.up`).
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import gw as img
from support.up import Up, pid_of, up_environment

from launcher.components import available_components

W, H = 96, 64
ARGS = ["--profile", "tiny", "--only", "inpaint", "--only", "gateway", "--timeout", "600"]


@pytest.fixture
def runs() -> Iterator[list[Up]]:
    """Every ``lvi up`` the drill started, killed (with anything left) at the end."""
    started: list[Up] = []
    yield started
    for up in started:
        up.kill()


def _start(env: dict[str, str], runs: list[Up]) -> tuple[Up, float]:
    """``lvi up``, and the seconds until its banner (every component ready)."""
    t0 = time.monotonic()
    up = Up(ARGS, env)
    runs.append(up)
    up.wait_for(r"Press Ctrl-C to stop", 800)
    return up, round(time.monotonic() - t0, 1)


def _until(call: Any, want: int, timeout: float, step: float = 0.5) -> tuple[httpx.Response, float]:
    """Repeat ``call()`` until it answers ``want``; the last answer and the seconds it took."""
    t0 = time.monotonic()
    while True:
        r = call()
        if r.status_code == want or time.monotonic() - t0 > timeout:
            return r, round(time.monotonic() - t0, 2)
        time.sleep(step)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_crash_under_lvi_up_keeps_the_session(
    lvi_cache: Path, tmp_path: Path, runs: list[Up], scenario: dict[str, Any]
) -> None:
    if "gateway" not in {c.name for c in available_components()}:
        pytest.fail("the gateway is not in this checkout")
    env = up_environment(lvi_cache, tmp_path / "hf")
    env["LVI_REDIS_DIR"] = str(tmp_path / "redis-data")  # this drill's own store
    up, scenario["s_first_start"] = _start(env, runs)
    key = up.wait_for(r"API key:\s+(\S+)", 1).group(1)
    assert re.search(r"Redis: .*data kept in", up.output)
    api = f"http://127.0.0.1:{env['GATEWAY_PORT']}"
    auth = {"Authorization": f"Bearer {key}"}
    picture = img.png(img.photo(W, H, seed=1))
    mask = img.mask_png(img.rect_mask(W, H, (20, 16, 60, 48)))
    with httpx.Client(base_url=api, headers=auth, timeout=120) as client:
        sid = client.post("/v1/sessions", json={"title": "crash drill"}).json()["id"]
        r = client.post(f"/v1/sessions/{sid}/images", content=picture,
                        headers={"Content-Type": "image/png"})  # fmt: skip
        assert r.status_code == 201, r.text
        v1 = r.json()["id"]
        stored = client.get(f"/v1/sessions/{sid}/images/{v1}").content

        def add_mask() -> str:
            r = client.post(f"/v1/sessions/{sid}/masks", content=mask,
                            headers={"Content-Type": "image/png"})  # fmt: skip
            assert r.status_code == 201, r.text
            return str(r.json()["mask_id"])

        def remove(mask_id: str) -> httpx.Response:
            return client.post(f"/v1/sessions/{sid}/remove", json={"mask_id": mask_id})

        mask_id = add_mask()

        # 1. The inpaint worker dies: its skill is 503, the rest keeps serving, it comes back.
        mark = len(up.lines)
        os.kill(pid_of(up, "inpaint"), signal.SIGKILL)
        t_kill = time.monotonic()
        up.wait_for(r"warning: inpaint exited with code -9; restarting it", 30, after=mark)
        scenario["s_worker_kill_to_noticed"] = round(time.monotonic() - t_kill, 2)
        t0 = time.monotonic()
        r = remove(mask_id)
        scenario["s_503_answer"] = round(time.monotonic() - t0, 2)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"], r.text  # the one envelope, with a code
        scenario["code_while_down"] = r.json()["error"]["code"]
        # Meanwhile: reads and a write to the store still work.
        assert client.get(f"/v1/sessions/{sid}").status_code == 200
        assert client.get(f"/v1/sessions/{sid}/images/{v1}").content == stored
        mask_id = add_mask()
        up.wait_for(r"inpaint is ready again", 300, after=mark)
        scenario["s_worker_kill_to_ready_again"] = round(time.monotonic() - t_kill, 2)
        # The gateway's breaker lets a trial call through after its reset time.
        r, _ = _until(lambda: remove(mask_id), 201, 60, step=1)
        assert r.status_code == 201, r.text
        scenario["s_worker_kill_to_skill_works"] = round(time.monotonic() - t_kill, 2)
        v2 = r.json()["id"]

        # 2. Redis dies: restarted from its append-only file, the session is all there.
        time.sleep(1.5)  # appendfsync everysec: the last write is on disk
        mark = len(up.lines)
        os.kill(pid_of(up, "redis"), signal.SIGKILL)
        t_kill = time.monotonic()
        up.wait_for(r"redis is ready again", 60, after=mark)
        scenario["s_redis_kill_to_ready_again"] = round(time.monotonic() - t_kill, 2)
        r, _ = _until(lambda: client.get(f"/v1/sessions/{sid}"), 200, 30)
        assert r.status_code == 200, r.text
        scenario["s_redis_kill_to_session_read"] = round(time.monotonic() - t_kill, 2)
        assert [v["id"] for v in r.json()["versions"]] == [v1, v2]

    # 3. lvi up itself dies: its children follow; a new run has the session and the key.
    up.snapshot()
    os.kill(up.proc.pid, signal.SIGKILL)
    t_kill = time.monotonic()
    up.proc.wait(10)
    up.assert_nothing_left(30)
    scenario["s_lvi_up_kill_to_nothing_left"] = round(time.monotonic() - t_kill, 2)
    again, scenario["s_second_start"] = _start(env, runs)
    assert again.wait_for(r"API key:\s+(\S+)", 1).group(1) == key
    with httpx.Client(base_url=api, headers=auth, timeout=120) as client:
        r = client.get(f"/v1/sessions/{sid}")
        assert r.status_code == 200, r.text
        assert [v["id"] for v in r.json()["versions"]] == [v1, v2] and r.json()["head"] == v2
        assert client.get(f"/v1/sessions/{sid}/images/{v1}").content == stored
    scenario["s_lvi_up_kill_to_session_served"] = round(time.monotonic() - t_kill, 2)
    again.ctrl_c()
    assert again.wait(120) == 0
    again.assert_nothing_left()
