"""Fault drills of issue 13, with real processes (redis-server, uvicorn gateway, the faulty
inpaint worker), each a row of the fault report (``make fault`` runs this file with
test_fault_suite.py):

- a full store: Redis at ``maxmemory`` (noeviction) answers 507 ``store_full`` to writes while
  every read keeps working, ``/readyz`` says ``full``, and writes resume when there is room;
- a quota exhausted by one principal (concurrent uploads) while another keeps working, and
  the quota holds exactly under concurrency (atomic in Redis);
- a dropped stream: the client closes an SSE ``remove`` after its first event; the worker
  stops, nothing is saved, and a retry with the same Idempotency-Key runs at once (no 409).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest
import redis as redis_sync
from integration.conftest import Stack
from reliability.common import metric, set_delay, start_faulty_inpaint, start_gateway
from support import gw as img
from support.procs import ProcessFactory

from lvi_client import APIError, LviClient

W, H = 96, 64


@pytest.fixture(scope="module")
def store_stack(procs: ProcessFactory) -> Stack:
    """Its own redis-server (the drills change its maxmemory) and faulty inpaint worker."""
    stack = Stack(procs, procs.redis())
    stack.workers["inpaint"] = start_faulty_inpaint(procs)
    return stack


def _noise(side: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return img.png(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))


def _prepared(c: LviClient, title: str) -> tuple[str, int, str]:
    s = c.create_session(title)
    v = c.upload_image(s.id, img.png(img.photo(W, H, seed=1)))
    m = c.upload_mask(s.id, img.mask_png(img.rect_mask(W, H, (10, 10, 40, 30))))
    return s.id, v.id, m.mask_id


def test_full_store(store_stack: Stack, scenario: dict[str, Any]) -> None:
    gw = start_gateway(store_stack, GATEWAY_RATE_LIMIT_PER_MINUTE="600000")
    r = redis_sync.Redis.from_url(store_stack.redis.url)
    try:
        with LviClient(gw.url, "alice-key") as alice, LviClient(gw.url, "bob-key") as bob:
            sid, v1, _ = _prepared(alice, "full store")
            bsid, bv1, _ = _prepared(bob, "full store, bob")
            r.config_set("maxmemory-policy", "noeviction")
            r.config_set("maxmemory", int(r.info("memory")["used_memory"]) + 2_000_000)
            answers: dict[str, int] = {}
            for i in range(60):
                try:
                    alice.upload_image(sid, _noise(200, i))
                    answers["201"] = answers.get("201", 0) + 1
                except APIError as e:
                    answers[f"{e.status} {e.code}"] = answers.get(f"{e.status} {e.code}", 0) + 1
                    if e.status == 507:
                        break
            scenario["answers"] = answers
            assert answers.get("507 store_full") == 1, answers
            assert not [a for a in answers if a.startswith("500")]
            # Every read still works, for every principal; writes are 507, not 500.
            assert bob.get_session(bsid).head == bv1
            assert bob.get_image(bsid, bv1)[:4] == b"\x89PNG"
            assert alice.get_session(sid).versions[0].id == v1
            assert httpx.get(f"{gw.url}/v1/info", headers={"Authorization": "Bearer bob-key"},
                             timeout=10).status_code == 200  # fmt: skip
            r.config_set("maxmemory", 1)  # squeezed: not even a small write fits now
            with pytest.raises(APIError) as e:
                bob.create_session("no room")
            assert (e.value.status, e.value.code) == (507, "store_full")
            ready = httpx.get(f"{gw.url}/readyz", timeout=10).json()
            scenario["readyz"] = f"{ready['status']} redis={ready['redis']}"
            assert ready["redis"] == "full"
            assert metric(gw.url, "lvi_gateway_store_errors_total") >= 2
            # Room again: writes resume without a restart.
            r.config_set("maxmemory", 0)
            assert bob.upload_image(bsid, img.png(img.photo(W, H, seed=3))).parent == bv1
    finally:
        r.config_set("maxmemory", 0)
        gw.stop()


def test_quota_exhausted_by_one_principal(store_stack: Stack, scenario: dict[str, Any]) -> None:
    quota = 700_000
    gw = start_gateway(store_stack, GATEWAY_QUOTAS=f"carol:bytes={quota}")
    # carol and bob: principals no other drill of this module stores anything for.
    with LviClient(gw.url, "carol-key", timeout=60) as alice, LviClient(gw.url, "bob-key") as bob:
        # One session per upload: concurrent uploads to one session would race for its head.
        sids = [alice.create_session(f"fill {i}").id for i in range(12)]
        bsids = [bob.create_session(f"bob works {i}").id for i in range(6)]

        def fill(i: int) -> str:
            try:
                alice.upload_image(sids[i], _noise(200, 100 + i))
                return "201"
            except APIError as e:
                return f"{e.status} {e.code} {e.param}"

        def bob_works(i: int) -> str:
            try:
                bob.upload_image(bsids[i], _noise(120, 500 + i))
                return "201"
            except APIError as e:
                return f"{e.status} {e.code}"

        with ThreadPoolExecutor(12) as pool:
            a = pool.map(fill, range(12))
            b = pool.map(bob_works, range(6))
            answers_a, answers_b = list(a), list(b)
        scenario["alice"] = {k: answers_a.count(k) for k in set(answers_a)}
        scenario["bob"] = {k: answers_b.count(k) for k in set(answers_b)}
        assert set(answers_a) <= {"201", "507 quota_exceeded bytes"}, answers_a
        assert "507 quota_exceeded bytes" in answers_a
        assert answers_b == ["201"] * 6
        usage = alice.usage()
        stored = sum(alice.get_session(s).bytes for s in sids)
        scenario["alice_bytes"] = usage.bytes.used
        assert usage.bytes.used <= quota  # held under 12 concurrent uploads
        assert stored <= quota
    gw.stop()


def test_dropped_stream_then_retry_same_key(store_stack: Stack, scenario: dict[str, Any]) -> None:
    worker = store_stack.workers["inpaint"]
    gw = start_gateway(store_stack)
    key = f"drop-{time.time()}"
    try:
        with LviClient(gw.url, "dave-key", timeout=60) as c:
            sid, v1, mask_id = _prepared(c, "dropped stream")
            abandoned0 = metric(worker.url, "lvi_fault_abandoned_total")
            set_delay(worker, 2)
            headers = {
                "Authorization": "Bearer dave-key",
                "Accept": "text/event-stream",
                "Idempotency-Key": key,
            }
            body = {"mask_id": mask_id}
            url = f"{gw.url}/v1/sessions/{sid}/remove"
            with httpx.Client(timeout=30) as h, h.stream("POST", url, json=body,
                                                         headers=headers) as resp:  # fmt: skip
                assert resp.status_code == 200
                first = next(resp.iter_lines())
                assert first.startswith("event: progress"), first
                time.sleep(0.5)  # the gateway is waiting on the worker now
            t_drop = time.monotonic()  # the connection is closed here
            # The same key runs again at once: no 409 idempotency_in_progress.
            retry = httpx.post(url, json=body, headers={**headers, "Accept": "application/json"},
                               timeout=30)  # fmt: skip
            scenario["retry"] = retry.status_code
            scenario["seconds_drop_to_retry_answer"] = round(time.monotonic() - t_drop, 2)
            assert retry.status_code == 201, retry.text
            assert retry.json()["parent"] == v1
            time.sleep(2.5)  # past the dropped job's delay: had it been kept, it would be saved
            scenario["worker_abandoned"] = (
                metric(worker.url, "lvi_fault_abandoned_total") - abandoned0
            )
            # Exactly one new version (nothing saved by the dropped one), and the key now
            # replays the retry's result.
            assert [v.id for v in c.get_session(sid).versions] == [v1, v1 + 1]
            replay = httpx.post(url, json=body, headers={**headers, "Accept": "application/json"},
                                timeout=30)  # fmt: skip
            assert replay.headers.get("idempotent-replayed") == "true"
            assert json.loads(replay.text)["id"] == v1 + 1
    finally:
        set_delay(worker, 0)
        gw.stop()
