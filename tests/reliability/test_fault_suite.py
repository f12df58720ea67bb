"""Faults with real processes on loopback, each while traffic runs, each bounded in time:

- a worker killed (SIGKILL) in the middle of requests: clear 502/503, sessions unchanged, no
  half-written version, the Idempotency-Key given back (a retry later runs exactly once);
- a worker slower than the gateway's deadline: 504, and the worker abandons the work;
- Redis stopped (killed, or frozen with SIGSTOP) under traffic: 503 from the gateway,
  automatic recovery when it returns, nothing acknowledged lost;
- Redis killed and restarted with AOF: every session and version still there, byte for byte;
- the gateway restarted (graceful SIGTERM, or SIGKILL) under traffic: sessions intact;
- a worker restarted under traffic: the circuit opens, then closes again and work resumes.

tests/gateway/test_faults.py (in-process gateway, mocked worker answers) and
tests/integration/test_robustness.py (single requests) cover the basic mapping of each
fault; this suite adds concurrent traffic, crashes mid-request and a ledger-based check
(reliability/traffic.py) that nothing acknowledged was lost and nothing unacknowledged
appeared. Each test is a row of the report (``make fault``).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis as redis_sync
from integration.conftest import Stack
from reliability.common import (
    API_KEYS,
    fknob,
    knob,
    metric,
    set_delay,
    start_faulty_inpaint,
    start_gateway,
    wait_for,
)
from reliability.traffic import (
    DEFAULT_WEIGHTS,
    Background,
    Traffic,
    TrafficConfig,
    snapshot,
    verify,
)
from support import gw as img
from support.procs import ProcessFactory, ServerProcess

from lvi_client import APIError, GatewayTimeoutError, LviClient

SESSIONS = knob("FAULT_SESSIONS", 8, 40)
ROUNDS = knob("FAULT_ROUNDS", 1, 3)
OUTAGE = fknob("FAULT_OUTAGE_SECONDS", 1.5, 4.0)
# How long after the run an interrupted edit keeps being retried with its key. A key left
# claimed by a failed request answers 409 idempotency_in_progress until its claim expires
# (see docs/RELIABILITY.md); such keys are counted as stuck_idempotency_keys.
RETRY_WINDOW = fknob("FAULT_RETRY_WINDOW", 2.0, 10.0)
TAIL = fknob("FAULT_TAIL_SECONDS", 1.0, 3.0)  # traffic after each recovery
LONG_ENOUGH = 600.0  # traffic runs until the test stops it
W, H = 96, 64
# No segmentation or chat worker in this stack: edits go to the (faulty) inpaint worker.
WEIGHTS = {**DEFAULT_WEIGHTS, "segment": 0, "chat": 0}
LONG_ONLY = pytest.mark.long  # deselected unless LVI_LONG=1 (make fault)
# The gateway as the fault tests run it: a fast-reacting breaker and Redis timeout.
GW_ENV = {
    "GATEWAY_BREAKER_FAILURES": "3",
    "GATEWAY_BREAKER_RESET_S": "1",
    "GATEWAY_REDIS_TIMEOUT_S": "1",
    "GATEWAY_CONNECT_RETRIES": "1",
}


@pytest.fixture(scope="module")
def fault_stack(procs: ProcessFactory) -> Stack:
    """Its own redis-server (AOF, appendfsync always) and a faulty inpaint worker; each test
    starts its own gateway(s), so breaker state never leaks between tests."""
    stack = Stack(procs, procs.redis(appendonly=True))
    stack.workers["inpaint"] = start_faulty_inpaint(procs)
    return stack


@pytest.fixture
def worker(fault_stack: Stack) -> Iterator[ServerProcess]:
    """The faulty inpaint worker, running with no delay (restarted if a test killed it)."""
    w = fault_stack.workers["inpaint"]
    _revive(w)
    set_delay(w, 0)
    yield w
    _revive(w)


def _revive(w: ServerProcess) -> None:
    if w.proc is None or w.proc.poll() is not None:
        w.args[-1] = "0"  # --delay
        w.start(timeout=120)


@pytest.fixture
def redis_alive(fault_stack: Stack) -> Iterator[ServerProcess]:
    r = fault_stack.redis
    yield r
    if r.proc is not None and r.proc.poll() is None:
        os.kill(r.proc.pid, signal.SIGCONT)  # never leave it frozen
    else:
        r.start()


def _traffic(
    gateways: list[str], seconds: float, weights: dict[str, float] | None = None, **kw: Any
) -> TrafficConfig:
    kw.setdefault("retry_window", RETRY_WINDOW)
    return TrafficConfig(
        gateways=gateways,
        keys=API_KEYS,
        sessions=SESSIONS,
        seconds=seconds,
        weights=dict(weights or WEIGHTS),
        width=W,
        height=H,
        retry=True,
        request_timeout=20,
        think=0.05,
        **kw,
    )


def _prepared(c: LviClient, n: int) -> list[tuple[str, int, str]]:
    out = []
    for i in range(n):
        s = c.create_session(f"fault {i}")
        v = c.upload_image(s.id, img.png(img.photo(W, H, seed=i)))
        m = c.upload_mask(s.id, img.mask_png(img.rect_mask(W, H, (10, 10, 40, 30))))
        out.append((s.id, v.id, m.mask_id))
    return out


def _store(stack: Stack) -> redis_sync.Redis:
    return redis_sync.Redis.from_url(stack.redis.url)


def _untouched(r: redis_sync.Redis, sid: str) -> None:
    """Exactly one version, one image, and no Idempotency-Key left claimed."""
    meta = {k.decode(): v.decode() for k, v in r.hgetall(f"lvi:{{{sid}}}:meta").items()}
    assert (meta["head"], meta["next"], meta["nversions"]) == ("1", "1", "1"), meta
    assert r.hlen(f"lvi:{{{sid}}}:versions") == 1
    assert r.hlen(f"lvi:{{{sid}}}:images") == 1
    claims = [json.loads(r.get(k) or "{}") for k in r.scan_iter(f"lvi:{{{sid}}}:idem:*")]
    assert [c for c in claims if c.get("state") != "done"] == []


def _assert_clean(traffic: Traffic, allowed_5xx: set[str], scenario: dict[str, Any]) -> None:
    """No status outside the expected ones; the ledger checks out against the store."""
    summary = traffic.stats.summary()
    verdict = verify(traffic.cfg.gateways[0], traffic.ledgers, images="all")
    scenario.update(
        requests=summary["requests"],
        ok=summary["ok"],
        status=summary["status"],
        codes=summary["codes"],
        retries=summary["retries"],
        idempotent_replays=summary["idempotent_replays"],
        stuck_idempotency_keys=summary["stuck_idempotency_keys"],
        versions=verdict.versions_acked,
        lost_updates=len(verdict.lost),
        phantom_versions=len(verdict.phantom),
        graph_errors=len(verdict.graph),
        uncertain_sessions=verdict.uncertain_sessions,
        verdict=verdict.summary(),
    )
    bad = {
        s: n
        for s, n in summary["status"].items()
        if s.isdigit() and int(s) >= 500 and s not in allowed_5xx
    }
    assert not bad, (bad, summary["problems"])
    unexpected = [p for p in traffic.stats.problems if not any(f" {s} " in p for s in allowed_5xx)]
    assert not unexpected, unexpected[:10]
    assert not verdict.problems, verdict.problems[:10]
    assert traffic.setup_stats.server_errors == 0, traffic.setup_stats.problems[:5]


def _first_ok_after(traffic: Traffic, t_abs: float) -> float | None:
    """Seconds from ``t_abs`` (monotonic) to the first successful request after it."""
    t_rel = t_abs - traffic.stats.started
    after = [t for t, _op, s in traffic.stats.timeline if t >= t_rel and s in ("200", "201")]
    return round(min(after) - t_rel, 2) if after else None


# -- 1. a worker killed in the middle of requests ------------------------------------------
def test_worker_killed_mid_request(
    fault_stack: Stack, worker: ServerProcess, scenario: dict[str, Any]
) -> None:
    gw = start_gateway(fault_stack, **GW_ENV)
    r = _store(fault_stack)
    with LviClient(gw.url, "alice-key", timeout=60) as c:
        sessions = _prepared(c, 3)
        set_delay(worker, 30)

        def remove(item: tuple[str, int, str]) -> tuple[float, APIError | None]:
            sid, _v, mask_id = item
            with LviClient(gw.url, "alice-key", timeout=60) as c2:
                try:
                    c2.remove(sid, mask_id, idempotency_key=f"kill-{sid}")
                    return time.monotonic(), None
                except APIError as e:
                    return time.monotonic(), e

        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(remove, s) for s in sessions]
            # One request running in the worker, the others in its queue: then kill it.
            wait_for(
                lambda: httpx.get(f"{worker.url}/v1/info", timeout=2).json()["inflight"] >= 1,
                timeout=20,
            )
            time.sleep(0.3)
            t_kill = time.monotonic()
            worker.kill()
            results = [f.result(timeout=30) for f in futures]

        errors = [e for _t, e in results]
        scenario["answers"] = sorted(f"{e.status} {e.code}" for e in errors if e)
        scenario["seconds_to_answer_max"] = round(max(t for t, _ in results) - t_kill, 2)
        assert all(e is not None and e.status in (502, 503) for e in errors), errors
        assert all(e.param == "inpaint" and "Traceback" not in e.message for e in errors if e)
        assert scenario["seconds_to_answer_max"] < 10
        for sid, v1, _m in sessions:
            s = c.get_session(sid)
            assert [v.id for v in s.versions] == [v1] and s.head == v1
            _untouched(r, sid)

        # The worker comes back: the same requests, retried with their keys, run once each.
        _revive(worker)
        t_back = time.monotonic()
        for sid, v1, mask_id in sessions:
            got = _retry(
                lambda sid=sid, mask_id=mask_id: c.remove(
                    sid, mask_id, idempotency_key=f"kill-{sid}"
                )
            )  # type: ignore[misc]
            assert got.parent == v1
            assert c.remove(sid, mask_id, idempotency_key=f"kill-{sid}") == got  # a replay
            assert [v.id for v in c.get_session(sid).versions] == [v1, got.id]
        scenario["seconds_to_recover"] = round(time.monotonic() - t_back, 2)
    gw.stop()


def _retry(fn: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except APIError as e:
            if e.status not in (429, 502, 503) or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


# -- 2. a worker slower than the deadline --------------------------------------------------
def test_worker_slower_than_deadline(
    fault_stack: Stack, worker: ServerProcess, scenario: dict[str, Any]
) -> None:
    gw = start_gateway(fault_stack, GATEWAY_INPAINT_TIMEOUT_S="1", **GW_ENV)
    r = _store(fault_stack)
    with LviClient(gw.url, "alice-key", timeout=60) as c:
        ((sid, v1, mask_id),) = _prepared(c, 1)
        abandoned0 = metric(worker.url, "lvi_fault_abandoned_total")
        completed0 = metric(worker.url, "lvi_fault_completed_total")
        set_delay(worker, 10)
        t0 = time.monotonic()
        with pytest.raises(GatewayTimeoutError) as e:
            c.remove(sid, mask_id)
        elapsed = time.monotonic() - t0
        scenario["answer"] = f"{e.value.status} {e.value.code}"
        scenario["seconds_to_504"] = round(elapsed, 2)
        assert e.value.code == "inpaint_timeout" and e.value.param == "inpaint"
        assert elapsed < 5, "the gateway waited far past its 1 s deadline"
        # The worker stopped the work at its deadline (it would have run 10 s), and its slot
        # is free again.
        scenario["seconds_to_abandon"] = round(
            wait_for(
                lambda: metric(worker.url, "lvi_fault_abandoned_total") > abandoned0, timeout=5
            ),
            2,
        )
        wait_for(
            lambda: httpx.get(f"{worker.url}/v1/info", timeout=2).json()["inflight"] == 0,
            timeout=3,
        )
        assert metric(worker.url, "lvi_fault_completed_total") == completed0
        s = c.get_session(sid)
        assert [v.id for v in s.versions] == [v1]
        _untouched(r, sid)
        set_delay(worker, 0)
        assert c.remove(sid, mask_id).parent == v1  # the worker is free for the next request
    gw.stop()


# -- 3. Redis stopped under traffic --------------------------------------------------------
@pytest.mark.parametrize("how", ["killed", pytest.param("frozen", marks=LONG_ONLY)])
def test_redis_stopped_under_traffic(
    fault_stack: Stack,
    worker: ServerProcess,
    redis_alive: ServerProcess,
    how: str,
    scenario: dict[str, Any],
) -> None:
    gw = start_gateway(fault_stack, **GW_ENV)
    redis = redis_alive
    recoveries: list[float] = []
    healthz_during: list[int] = []
    readyz_during: list[int] = []
    with Background(_traffic([gw.url], LONG_ENOUGH)) as bg:
        bg.wait_started()
        for _ in range(ROUNDS):
            time.sleep(1.0)
            if how == "killed":
                redis.kill()
            else:
                assert redis.proc is not None
                os.kill(redis.proc.pid, signal.SIGSTOP)
            time.sleep(OUTAGE / 2)
            healthz_during.append(httpx.get(f"{gw.url}/healthz", timeout=10).status_code)
            readyz_during.append(httpx.get(f"{gw.url}/readyz", timeout=15).status_code)
            time.sleep(OUTAGE / 2)
            t_back = time.monotonic()
            if how == "killed":
                redis.start()
            else:
                assert redis.proc is not None
                os.kill(redis.proc.pid, signal.SIGCONT)
            wait_for(
                lambda: httpx.get(f"{gw.url}/readyz", timeout=5).status_code == 200, timeout=20
            )
            time.sleep(TAIL)
            recoveries.append(_first_ok_after(bg.traffic, t_back) or -1.0)
        traffic = bg.finish(0)
    scenario.update(
        rounds=ROUNDS,
        outage_s=OUTAGE,
        healthz_during=healthz_during,
        readyz_during=readyz_during,
        seconds_to_first_success=recoveries,
        answers_503=traffic.stats.status.get("503", 0),
    )
    assert set(healthz_during) == {200}  # the process itself stays up
    assert set(readyz_during) == {503}
    assert all(0 <= x < 10 for x in recoveries), recoveries
    assert traffic.stats.status.get("503", 0) > 0, "the outage was not seen"
    codes = {c.split()[1] for c in traffic.stats.codes if c.startswith("503")}
    assert codes <= {"session_store_unavailable", "session_store_loading"}, codes
    assert traffic.stats.status.get("transport", 0) == 0
    _assert_clean(traffic, {"503"}, scenario)
    gw.stop()


# -- 4. Redis killed and restarted with AOF -------------------------------------------------
def test_redis_restart_with_aof_keeps_everything(
    fault_stack: Stack, worker: ServerProcess, redis_alive: ServerProcess, scenario: dict[str, Any]
) -> None:
    gw = start_gateway(fault_stack, **GW_ENV)
    traffic = Traffic(_traffic([gw.url], fknob("FAULT_AOF_SECONDS", 3.0, 15.0)))
    traffic.run_sync()
    before = snapshot(gw.url, traffic.ledgers)
    r = _store(fault_stack)
    assert r.config_get("appendonly")["appendonly"] == "yes"
    keys_before = _session_keys(r)
    redis_alive.kill()  # SIGKILL: no shutdown save, only what the AOF holds
    redis_alive.start()
    wait_for(lambda: httpx.get(f"{gw.url}/readyz", timeout=5).status_code == 200, timeout=20)
    after = snapshot(gw.url, traffic.ledgers)
    scenario.update(
        sessions=len(before),
        versions=sum(len(s["versions"]) for s in before.values()),
        masks=sum(len(s["masks"]) for s in before.values()),
        keys=keys_before,
    )
    assert _session_keys(r) == keys_before
    assert after == before
    _assert_clean(traffic, set(), scenario)
    gw.stop()


def _session_keys(r: redis_sync.Redis) -> int:
    """Keys of sessions (not the rate limiter's, which expire by themselves)."""
    return sum(1 for _ in r.scan_iter("lvi:{*", count=1000))


# -- 5. the gateway restarted under traffic ------------------------------------------------
@pytest.mark.parametrize("how", [pytest.param("graceful", marks=LONG_ONLY), "crash"])
def test_gateway_restart_under_traffic(
    fault_stack: Stack, worker: ServerProcess, how: str, scenario: dict[str, Any]
) -> None:
    gw = start_gateway(fault_stack, **GW_ENV)
    downtime: list[float] = []
    cfg = _traffic([gw.url], LONG_ENOUGH)
    with Background(cfg) as bg:
        bg.wait_started()
        for _ in range(ROUNDS):
            time.sleep(1.0)
            t0 = time.monotonic()
            if how == "graceful":
                gw.stop()  # SIGTERM: uvicorn finishes the requests in flight
            else:
                gw.kill()
            gw.start()
            downtime.append(round(time.monotonic() - t0, 2))
            time.sleep(TAIL)
        traffic = bg.finish(0)
    transport = {c: n for c, n in traffic.stats.codes.items() if c.startswith("transport")}
    scenario.update(rounds=ROUNDS, restart_seconds=downtime, transport_errors=transport)
    assert traffic.stats.status.get("transport", 0) > 0, "the restart was not seen"
    _assert_clean(traffic, set(), scenario)
    if how == "graceful":
        # Nothing was left claimed: every interrupted edit was retried to a definite answer.
        assert traffic.stats.stuck_keys == 0
    gw.stop()


# -- 6. a worker restarted under traffic ---------------------------------------------------
def test_worker_restart_closes_the_circuit(
    fault_stack: Stack, worker: ServerProcess, scenario: dict[str, Any]
) -> None:
    gw = start_gateway(fault_stack, **GW_ENV)
    circuit = 'worker="inpaint"'
    weights = {**WEIGHTS, "remove": 30, "move": 20}
    recoveries: list[float] = []
    starts: list[float] = []
    opened: list[bool] = []
    with Background(_traffic([gw.url], LONG_ENOUGH, weights=weights)) as bg:
        bg.wait_started()
        for _ in range(ROUNDS):
            time.sleep(1.0)
            worker.stop()  # SIGTERM: drains, then exits
            wait_for(lambda: metric(gw.url, "lvi_gateway_circuit_open", circuit) == 1, timeout=10)
            opened.append(True)
            states = {
                w["name"]: w["state"] for w in httpx.get(f"{gw.url}/readyz").json()["workers"]
            }
            assert states["inpaint"] in ("unreachable", "circuit_open"), states
            time.sleep(1.0)
            t0 = time.monotonic()
            _revive(worker)
            t_back = time.monotonic()
            starts.append(round(t_back - t0, 2))
            wait_for(lambda: metric(gw.url, "lvi_gateway_circuit_open", circuit) == 0, timeout=15)
            recoveries.append(round(time.monotonic() - t_back, 2))
            time.sleep(TAIL)
        traffic = bg.finish(0)
    oks_after = _first_ok_after(traffic, t_back)
    scenario.update(
        rounds=ROUNDS,
        circuit_opened=all(opened),
        worker_start_s=starts,
        seconds_to_close=recoveries,
        answers_503=traffic.stats.status.get("503", 0),
        first_success_after_s=oks_after,
    )
    codes = {c.split()[1] for c in traffic.stats.codes if c[:3] in ("502", "503")}
    assert codes <= {"inpaint_unavailable"}, codes
    assert traffic.stats.by_op.get("remove 201", 0) > 0
    _assert_clean(traffic, {"502", "503"}, scenario)
    ready = httpx.get(f"{gw.url}/readyz").json()
    assert {w["name"]: w["state"] for w in ready["workers"]}["inpaint"] == "ready"
    gw.stop()
