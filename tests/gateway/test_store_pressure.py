"""Issue 13, points 1, 2 and 6 (gateway side), against a real redis-server: a full store is
507 ``store_full`` for writes while reads keep working; quotas per principal; the small
ones (half PNG, a chunked body over the limit, a reused Idempotency-Key on create,
``/readyz`` cached and without model paths for anonymous callers)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import redis as redis_sync
from fastapi.testclient import TestClient
from support import gw as img
from support.procs import ProcessFactory, ServerProcess

from gateway.quotas import Quotas, parse_quotas, parse_size
from lvi.errors import LviError
from lvi_client import APIError, InsufficientStorageError, LviClient, RateLimitError

from .conftest import Factory, gateway_settings

ALICE = {"Authorization": "Bearer alice-key"}


def noise_png(side: int, seed: int) -> bytes:
    """A PNG that does not compress (about side*side*3 bytes)."""
    rng = np.random.default_rng(seed)
    return img.png(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))


@pytest.fixture
def small_redis(procs: ProcessFactory) -> Iterator[ServerProcess]:
    """A redis-server of its own (the tests change its maxmemory)."""
    srv = procs.redis()
    yield srv
    srv.kill()


def _r(srv: ServerProcess) -> redis_sync.Redis:
    return redis_sync.Redis.from_url(srv.url)


# -- point 1: a full store -------------------------------------------------------------------
def test_full_store_is_507_for_writes_and_reads_keep_working(
    small_redis: ServerProcess, make_gateway: Factory
) -> None:
    """Redis at maxmemory (noeviction, the k8s setting): was a 500 on every route."""
    # The rate limiter on: its GCRA script writes, and must fail open (reads keep working).
    tc = make_gateway(redis_url=small_redis.url, rate_limit_per_minute=60000)
    c = LviClient("http://gateway", "alice-key", http_client=tc)
    sid = c.create_session("full").id
    v1 = c.upload_image(sid, img.png(img.photo(96, 64, seed=1))).id
    r = _r(small_redis)
    used = int(r.info("memory")["used_memory"])
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", used + 1_500_000)
    with pytest.raises(InsufficientStorageError) as e:
        for i in range(40):
            c.upload_image(sid, noise_png(200, seed=i))
    assert e.value.status == 507 and e.value.code == "store_full"
    # Reads (and the rate-limited auth path) still work.
    session = c.get_session(sid)
    assert session.versions[0].id == v1
    assert c.get_image(sid, v1)[:8] == b"\x89PNG\r\n\x1a\n"
    # Other writes: 507 with the envelope, never a 500 (squeezed: nothing fits any more).
    r.config_set("maxmemory", 1)
    with pytest.raises(InsufficientStorageError):
        c.create_session("another")
    ready = tc.get("/readyz")
    assert ready.status_code == 200, ready.text  # stays in rotation: reads still work there
    assert ready.json()["redis"] == "full" and ready.json()["status"] == "degraded"
    metrics = tc.get("/metrics").text
    assert 'lvi_gateway_store_errors_total{code="store_full"}' in metrics
    # Room again: writes work without a restart.
    r.config_set("maxmemory", 0)
    time.sleep(1.6)  # the readiness cache
    assert c.upload_image(sid, img.png(img.photo(96, 64, seed=2))).parent is not None
    assert tc.get("/readyz").json()["redis"] == "ok"


def test_other_redis_errors_are_503_not_500(
    small_redis: ServerProcess, make_gateway: Factory
) -> None:
    """A Redis that answers an error (here: a read-only replica) is 503 store_unavailable."""
    tc = make_gateway(redis_url=small_redis.url)
    c = LviClient("http://gateway", "alice-key", http_client=tc)
    sid = c.create_session("ro").id
    r = _r(small_redis)
    r.config_set("replica-read-only", "yes")
    r.execute_command("REPLICAOF", "127.0.0.1", "9")  # nothing there: stays a read-only replica
    try:
        with pytest.raises(APIError) as e:
            c.upload_image(sid, img.png(img.photo(32, 32)))
        assert e.value.status == 503 and e.value.code == "store_unavailable"
        assert c.get_session(sid).id == sid  # reads work
    finally:
        r.execute_command("REPLICAOF", "NO", "ONE")


# -- point 2: quotas -------------------------------------------------------------------------
def test_quotas_parse() -> None:
    assert parse_size("1GiB") == 2**30 and parse_size("500MB") == 500_000_000
    assert parse_size("1234") == 1234
    q = parse_quotas("alice:bytes=1GiB,sessions=50; *:jobs=2")
    assert q == {"alice": {"bytes": 2**30, "sessions": 50}, "*": {"jobs": 2}}
    with pytest.raises(ValueError):
        parse_quotas("alice:cats=3")
    with pytest.raises(ValueError):
        gateway_settings("redis://x", quotas="alice:bytes=lots")


def test_session_and_bytes_quotas_one_principal_only(
    small_redis: ServerProcess, make_gateway: Factory
) -> None:
    """One key could fill the store (12 x 24 MB in 4 s); now it meets its own quota while
    another principal keeps working, and deleting a session gives its bytes back."""
    tc = make_gateway(redis_url=small_redis.url, quotas="alice:bytes=400KB,sessions=2")
    alice = LviClient("http://gateway", "alice-key", http_client=tc)
    bob = LviClient("http://gateway", "bob-key", http_client=tc)
    s1 = alice.create_session("one").id
    s2 = alice.create_session("two").id
    with pytest.raises(RateLimitError) as e:
        alice.create_session("three")
    assert e.value.code == "quota_exceeded" and e.value.param == "sessions"
    bob.create_session("bob's")  # another principal is not affected
    alice.upload_image(s1, noise_png(200, 1))  # ~120 KB each
    alice.upload_image(s2, noise_png(200, 2))
    with pytest.raises(InsufficientStorageError) as e2:
        for i in range(3, 10):
            alice.upload_image(s1, noise_png(200, i))
    assert e2.value.code == "quota_exceeded" and e2.value.param == "bytes"
    usage = alice.usage()
    assert usage.sessions.used == 2 and usage.sessions.limit == 2
    assert 0 < usage.bytes.used <= 400_000 and usage.bytes.limit == 400_000
    bsid = bob.create_session("bob's 2").id
    bob.upload_image(bsid, noise_png(200, 99))  # bob's default quota is far away
    # Deleting gives the bytes and the session slot back at once.
    alice.delete_session(s1)
    after = alice.usage()
    assert after.sessions.used == 1 and after.bytes.used < usage.bytes.used
    alice.upload_image(alice.create_session("again").id, noise_png(200, 42))
    # A session that expired (its keys gone, its recorded expiry passed) is dropped lazily.
    r = _r(small_redis)
    for k in r.keys(f"lvi:{{{s2}}}:*"):
        r.delete(k)
    r.zadd("lvi:{q:alice}:sessions", {s2: 1})
    assert alice.usage().sessions.used == 1
    assert tc.get("/metrics").text.count('lvi_gateway_quota_exceeded_total{quota="bytes"}') == 1


def test_live_session_with_stale_expiry_is_kept(
    small_redis: ServerProcess, make_gateway: Factory
) -> None:
    """Chat or undo refresh a session's TTL without booking bytes: its recorded expiry may
    pass while it lives; the lazy cleanup must not forget it (reconcile re-dates it)."""
    tc = make_gateway(redis_url=small_redis.url)
    c = LviClient("http://gateway", "alice-key", http_client=tc)
    sid = c.create_session("kept").id
    c.upload_image(sid, noise_png(64, 1))
    before = c.usage().bytes.used
    _r(small_redis).zadd("lvi:{q:alice}:sessions", {sid: 1})  # "expired" on record only
    assert c.usage().sessions.used == 1 and c.usage().bytes.used == before


@pytest.mark.anyio
async def test_long_job_quota(small_redis: ServerProcess) -> None:
    """Concurrent long jobs per principal (generate, inpaint, remove, replace, move)."""
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(small_redis.url)
    q = Quotas(r, gateway_settings(small_redis.url, quotas="alice:jobs=1"))
    try:
        async with q.job("alice", "remove", 30):
            with pytest.raises(LviError) as e:
                async with q.job("alice", "generate", 30):
                    pass
            assert e.value.status == 429 and e.value.param == "jobs"
            async with q.job("alice", "segment", 30):  # not a long job
                pass
            async with q.job("bob", "generate", 30):  # another principal
                pass
            assert (await q.usage("alice")).jobs.used == 1
        async with q.job("alice", "generate", 30):  # the slot was given back
            pass
    finally:
        await r.aclose()


# -- point 6 (gateway side) ------------------------------------------------------------------
def test_half_png_with_iend_is_refused(alice: LviClient) -> None:
    whole = noise_png(128, 5)
    half = whole[: len(whole) // 2] + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    sid = alice.create_session("half").id
    with pytest.raises(APIError) as e:
        alice.upload_image(sid, half)
    assert e.value.status == 400 and e.value.code == "invalid_image"
    assert alice.get_session(sid).versions == []
    assert alice.upload_image(sid, whole).id


def test_chunked_body_over_the_limit_is_413(make_gateway: Factory) -> None:
    tc = make_gateway(max_body_bytes=1_000_000)

    def chunks() -> Iterator[bytes]:
        for _ in range(40):  # 40 x 100 KB, no Content-Length
            yield b"{" + b" " * 99_999

    for path, ctype in (("/v1/sessions", "application/json"), ("/v1/sessions", "image/png")):
        r = tc.post(path, content=chunks(), headers={**ALICE, "Content-Type": ctype})
        assert r.status_code == 413, r.text
        assert r.json()["error"]["type"] == "payload_too_large"


def test_create_session_key_reused_with_another_body_is_422(gw: TestClient) -> None:
    tc = gw
    h = {**ALICE, "Idempotency-Key": f"k-{time.time()}"}
    first = tc.post("/v1/sessions", json={"title": "a"}, headers=h)
    again = tc.post("/v1/sessions", json={"title": "a"}, headers=h)
    assert first.status_code == 201 and again.json()["id"] == first.json()["id"]
    other = tc.post("/v1/sessions", json={"title": "b"}, headers=h)
    assert other.status_code == 422, other.text
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_readyz_cached_and_no_details_without_a_key(make_gateway: Factory) -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if request.url.path == "/v1/info":
            return httpx.Response(200, json={"model": "/models/secret/path"})
        return httpx.Response(200, json={"status": "ready"})

    from gateway.clients import WorkerClients

    clients = WorkerClients.from_settings(
        gateway_settings("redis://unused"), transports={"inpaint": httpx.MockTransport(handler)}
    )
    tc = make_gateway(clients=clients)
    for _ in range(20):
        body = tc.get("/readyz").text
        assert "/models/secret" not in body
    assert calls["n"] <= 2 * 2  # one probe round (health + info), maybe two
    full = tc.get("/readyz", headers=ALICE).json()
    inpaint = {w["name"]: w for w in full["workers"]}["inpaint"]
    assert inpaint["info"] == {"model": "/models/secret/path"}
