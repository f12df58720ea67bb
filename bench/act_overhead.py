"""Chat ``act`` (issue 15): what it adds to a chat turn through the gateway.

Starts redis-server, the tiny llava and inpaint workers, a seem worker with known answers
(``tests/support/fake_seem.py``: answers in about a millisecond, so segmentation cost does not
hide the gateway's) and ``lvi gateway`` (rules planner), all real processes on loopback, then
times N turns of each case through the SDK:

- ``question``: "What is in this picture?" with ``act`` false, then true (the plan finds
  nothing to do): the difference is the planner plus reading the session's last mask;
- ``remove``: "remove the cat" with ``act`` (plan, segment, remove, chat told what was done)
  against the same work as three calls from the client (segment, remove, chat).

The two of a case alternate, and each is also reported as the gateway's own time (end to end
minus the seconds the gateway measured waiting on workers, from its /metrics), which is what
``act`` can add: the tiny workers' time varies far more than that on a shared machine.

    .venv/bin/python bench/act_overhead.py [--runs 20] [--json bench/results/act_overhead.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support import gw as img  # noqa: E402
from support.procs import ProcessFactory, ServerProcess, free_port  # noqa: E402

from lvi_client import LviClient  # noqa: E402

KEYS = "bench:bench-key"
W, H = 512, 384
CHAT: dict[str, Any] = {"max_tokens": 8, "seed": 1, "temperature": 0.0}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def stats(ms: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(ms), 2),
        "p90_ms": round(pct(ms, 0.9), 2),
        "min_ms": round(min(ms), 2),
    }


def start(procs: ProcessFactory, logs: Path) -> ServerProcess:
    redis = procs.redis()
    llava = procs.lvi("worker", "llava", wait=False)
    inpaint = procs.lvi("worker", "inpaint", wait=False)
    port = free_port()
    seem = ServerProcess(
        name="fake-seem",
        args=[sys.executable, "-m", "uvicorn", "fake_seem:app", "--app-dir",
              str(ROOT / "tests" / "support"), "--host", "127.0.0.1", "--port", str(port)],
        env=dict(procs.base_env),
        port=port,
        log_path=logs / "fake-seem.log",
    )  # fmt: skip
    procs.servers.append(seem)
    seem.start(timeout=60)
    llava.wait_ready(timeout=300)
    inpaint.wait_ready(timeout=300)
    env = {
        "GATEWAY_REDIS_URL": redis.url,
        "GATEWAY_API_KEYS": KEYS,
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        "GATEWAY_LLAVA_URL": llava.url,
        "GATEWAY_SEEM_URL": seem.url,
        "GATEWAY_INPAINT_URL": inpaint.url,
        "GATEWAY_GLIGEN_URL": "http://127.0.0.1:9",
        "GATEWAY_PLANNER_KIND": "rules",
    }
    return procs.lvi("gateway", env=env, ready_path="/healthz")


def worker_seconds(gw: httpx.Client) -> float:
    """Seconds the gateway has spent waiting on workers so far (its own histogram)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in gw.get("/metrics").text.splitlines()
        if line.startswith("lvi_gateway_worker_call_seconds_sum")
    )


def paired(
    gw: httpx.Client,
    runs: int,
    setup: Callable[[], Any],
    a: Callable[[Any], object],
    b: Callable[[Any], object],
) -> dict[str, list[float]]:
    """Alternate ``a`` and ``b`` (so load from other processes hits both alike). For each:
    milliseconds end to end, and the gateway's own (end to end minus its worker waits)."""
    out: dict[str, list[float]] = {"a": [], "a_own": [], "b": [], "b_own": []}
    for _ in range(runs):
        for name, call in (("a", a), ("b", b)):
            arg = setup()
            w0 = worker_seconds(gw)
            t0 = time.perf_counter()
            call(arg)
            total = time.perf_counter() - t0
            out[name].append(total * 1000)
            out[name + "_own"].append((total - (worker_seconds(gw) - w0)) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    logs = Path(tempfile.mkdtemp(prefix="act-bench-"))
    env = {
        **os.environ,
        "LVI_PROFILE": "tiny",
        "LVI_LOG_JSON": "false",
        "LVI_LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        "LVI_CACHE_DIR": os.environ.get("LVI_CACHE_DIR", str(logs / "cache")),
    }
    os.environ["LVI_CACHE_DIR"] = env["LVI_CACHE_DIR"]
    procs = ProcessFactory(env, logs)
    photo = img.png(img.photo(W, H))
    try:
        gw = start(procs, logs)
        with (
            LviClient(gw.url, "bench-key", timeout=300) as lvi,
            httpx.Client(base_url=gw.url, timeout=30) as metrics,
        ):

            def session() -> str:
                s = lvi.create_session("bench")
                lvi.upload_image(s.id, photo)
                return s.id

            one = session()  # the question cases share one session (history grows equally)
            for _ in range(3):  # warm up every path
                lvi.chat(one, "What is this?", **CHAT)
                lvi.chat(one, "What is this?", act=True, **CHAT)
                lvi.chat(session(), "remove the cat", act=True, **CHAT)
            q = paired(
                metrics,
                args.runs,
                lambda: one,
                lambda s: lvi.chat(s, "What is in this picture?", **CHAT),
                lambda s: lvi.chat(s, "What is in this picture?", act=True, **CHAT),
            )

            def act_remove(sid: str) -> None:
                r = lvi.chat(sid, "remove the cat", act=True, **CHAT)
                assert [a.status for a in r.actions] == ["done", "done"], r.actions

            def manual_remove(sid: str) -> None:
                m = lvi.segment(sid, text="cat")
                lvi.remove(sid, m.mask_id, dilate=10)
                lvi.chat(sid, "remove the cat", **CHAT)

            r = paired(metrics, args.runs, session, manual_remove, act_remove)
    finally:
        procs.close()

    result: dict[str, Any] = {
        "benchmark": "act_overhead",
        "command": "python bench/act_overhead.py " + " ".join(sys.argv[1:]),
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version()},
        "image": [W, H],
        "runs": args.runs,
        "question": {
            "act_false": stats(q["a"]),
            "act_true": stats(q["b"]),
            "gateway_own_act_false": stats(q["a_own"]),
            "gateway_own_act_true": stats(q["b_own"]),
            "added_own_median_ms": round(
                statistics.median(q["b_own"]) - statistics.median(q["a_own"]), 2
            ),
        },
        "remove": {
            "three_calls_segment_remove_chat": stats(r["a"]),
            "act_one_turn": stats(r["b"]),
            "gateway_own_three_calls": stats(r["a_own"]),
            "gateway_own_act": stats(r["b_own"]),
            "difference_median_ms": round(statistics.median(r["b"]) - statistics.median(r["a"]), 2),
        },
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
