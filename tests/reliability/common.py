"""What the reliability suites (fault, load, fuzz) share: knobs, stacks, fault helpers.

Short versions run in the normal test command; the make targets run the long ones
(``make fault``, ``make load``, ``make fuzz``) by setting ``LVI_LONG=1`` and the sizes below.

Knobs (environment):

- ``LVI_LONG=1``: long versions (more sessions, rounds and examples);
- ``LOAD_SESSIONS`` / ``LOAD_SECONDS``: the load suite's concurrent sessions and run time;
- ``FAULT_SESSIONS``: sessions of the traffic that runs during each fault;
- ``FUZZ_EXAMPLES``: schemathesis examples per operation;
- ``LVI_RELIABILITY_REPORT=PREFIX``: write ``PREFIX.json`` and ``PREFIX.md`` with one row per
  scenario (survived or not, and its figures).

The stacks reuse :class:`integration.conftest.Stack` (the integration suite's launcher) with
the fast backends: OpenCV inpainting and GrabCut segmentation.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from integration.conftest import Stack
from support.procs import ProcessFactory, ServerProcess, free_port

HERE = Path(__file__).resolve().parent
LONG = os.environ.get("LVI_LONG", "") not in ("", "0", "false", "no")
KEYS = "alice:alice-key,bob:bob-key,carol:carol-key,dave:dave-key,erin:erin-key"
API_KEYS = [pair.split(":")[1] for pair in KEYS.split(",")]
# Fast backends and deep worker queues: a load run measures the stack, not 429s.
FAST_WORKERS: dict[str, dict[str, str]] = {
    "inpaint": {"INPAINT_BACKEND": "opencv", "INPAINT_MAX_QUEUE": "1024"},
    "seem": {"SEEM_BACKEND": "grabcut", "SEEM_MAX_QUEUE": "1024"},
}
HIGH_RATE = {"GATEWAY_RATE_LIMIT_PER_MINUTE": "6000000", "GATEWAY_RATE_LIMIT_BURST": "100000"}


def knob(name: str, short: int, long: int) -> int:
    """An integer setting: the env var if set, else the short or long default."""
    raw = os.environ.get(name)
    return int(raw) if raw else (long if LONG else short)


def fknob(name: str, short: float, long: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else (long if LONG else short)


# -- stacks ---------------------------------------------------------------------------------
def fast_stack(procs: ProcessFactory, *, chat: bool = False) -> Stack:
    """redis-server (AOF) + inpaint (OpenCV) + seem (GrabCut) [+ llava tiny] + a gateway."""
    redis = procs.redis(appendonly=True)
    stack = Stack(procs, redis)
    for name, env in FAST_WORKERS.items():
        stack.workers[name] = procs.lvi("worker", name, env=env, wait=False)
    if chat:
        # A 128-token context bounds every generation (the fuzz suite sends any max_tokens).
        stack.workers["llava"] = procs.lvi(
            "worker",
            "llava",
            env={"LLAVA_MAX_CONTEXT": "128", "LLAVA_MAX_QUEUE": "1024"},
            wait=False,
        )
    for w in stack.workers.values():
        w.wait_ready(timeout=180)
    start_gateway(stack)
    return stack


def start_gateway(stack: Stack, wait: bool = True, **overrides: str) -> ServerProcess:
    """A gateway process on ``stack`` with the suite's keys and a high rate limit."""
    env = stack.gateway_env(GATEWAY_API_KEYS=KEYS, **HIGH_RATE)
    env.update(overrides)
    gw = stack.procs.lvi("gateway", env=env, ready_path="/healthz", wait=wait)
    stack.gateways.append(gw)
    return gw


def start_faulty_inpaint(
    procs: ProcessFactory, delay: float = 0.0, port: int | None = None
) -> ServerProcess:
    """The real inpaint app with an injectable delay (tests/reliability/faulty_worker.py)."""
    port = port or free_port()
    srv = ServerProcess(
        name="faulty-inpaint",
        args=[
            sys.executable,
            str(HERE / "faulty_worker.py"),
            "--port",
            str(port),
            "--delay",
            str(delay),
        ],
        env={**procs.base_env, "INPAINT_MAX_QUEUE": "64"},
        port=port,
        log_path=procs.log_dir / f"faulty-inpaint-{port}.log",
    )
    procs.servers.append(srv)
    return srv.start(timeout=120)


def set_delay(worker: ServerProcess, seconds: float) -> None:
    r = httpx.put(f"{worker.url}/fault/delay", json={"seconds": seconds}, timeout=10)
    r.raise_for_status()


def metric(url: str, name: str, labels: str = "") -> float:
    """One sample of a Prometheus text page (0 when absent)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    want = f"{name}{{{labels}}}" if labels else name
    total = 0.0
    for line in text.splitlines():
        if line.startswith(want + " ") or (not labels and line.startswith(name + "{")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_for(pred: Any, timeout: float, step: float = 0.1) -> float:
    """Poll ``pred()`` until true; returns the seconds it took (raises on timeout)."""
    t0 = time.monotonic()
    while True:
        try:
            if pred():
                return time.monotonic() - t0
        except (httpx.HTTPError, OSError):
            pass
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)
