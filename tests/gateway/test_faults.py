"""Faults: a worker that is down, slow, busy or broken; Redis going away and coming back.
Every one answers with the envelope and the right status, and leaves the session untouched."""

from __future__ import annotations

import time

import httpx
import pytest
from support import gw as img
from support.procs import ProcessFactory

from gateway.clients import WorkerClients
from lvi_client import (
    BadGatewayError,
    GatewayTimeoutError,
    LviClient,
    RateLimitError,
    ServiceUnavailableError,
)

from .conftest import DEAD_URL, gateway_settings

W, H = 64, 48


def _prepared(client: LviClient) -> tuple[str, int, str]:
    s = client.create_session()
    v = client.upload_image(s.id, img.png(img.photo(W, H)))
    m = client.upload_mask(s.id, img.mask_png(img.rect_mask(W, H, (10, 10, 20, 20))))
    return s.id, v.id, m.mask_id


def test_worker_down_is_503_naming_it_and_the_circuit_opens(make_gateway) -> None:  # type: ignore[no-untyped-def]
    tc = make_gateway(inpaint_url=DEAD_URL, breaker_failures=2, breaker_reset_s=30)
    c = LviClient("http://gateway", "alice-key", http_client=tc)
    sid, v1, mask_id = _prepared(c)
    for _ in range(2):
        with pytest.raises(ServiceUnavailableError) as e:
            c.remove(sid, mask_id)
        assert e.value.param == "inpaint" and e.value.code == "inpaint_unavailable"
        assert "inpainting" in e.value.message and "cannot be reached" in e.value.message
    with pytest.raises(ServiceUnavailableError) as e:
        c.remove(sid, mask_id)  # the circuit is open now: answered without a call
    assert "paused" in e.value.message and int(e.value.headers["retry-after"]) >= 1
    session = c.get_session(sid)
    assert [v.id for v in session.versions] == [v1] and session.head == v1
    ready = tc.get("/readyz").json()
    assert {w["name"]: w["state"] for w in ready["workers"]}["inpaint"] == "circuit_open"
    assert 'lvi_gateway_circuit_open{worker="inpaint"} 1.0' in tc.get("/metrics").text


def _mocked(settings_kw: dict, handler) -> WorkerClients:  # type: ignore[no-untyped-def, type-arg]
    return WorkerClients.from_settings(
        gateway_settings("redis://unused", **settings_kw),
        transports={"inpaint": httpx.MockTransport(handler)},
    )


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        ("timeout", GatewayTimeoutError, "inpaint_timeout"),
        (
            httpx.Response(
                429,
                json={
                    "error": {"type": "rate_limit_error", "message": "busy", "code": "queue_full"}
                },
                headers={"Retry-After": "7"},
            ),
            RateLimitError,
            "inpaint_busy",
        ),
        (
            httpx.Response(
                503,
                json={
                    "error": {
                        "type": "service_unavailable",
                        "message": "loading",
                        "code": "not_ready",
                    }
                },
            ),
            ServiceUnavailableError,
            "inpaint_unavailable",
        ),
        (
            httpx.Response(500, text="Traceback (most recent call last): ..."),
            BadGatewayError,
            "inpaint_error",
        ),
        (
            httpx.Response(200, json={"image": "!!", "width": 1}),
            BadGatewayError,
            "inpaint_bad_answer",
        ),
    ],
    ids=["timeout", "busy", "not-ready", "crash", "garbage"],
)
def test_worker_faults_map_to_clear_errors_and_save_nothing(
    make_gateway, answer, error, code
) -> None:  # type: ignore[no-untyped-def]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if answer == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        return answer

    tc = make_gateway(clients=_mocked({"inpaint_timeout_s": 0.5}, handler))
    c = LviClient("http://gateway", "alice-key", http_client=tc)
    sid, v1, mask_id = _prepared(c)
    with pytest.raises(error) as e:
        c.remove(sid, mask_id, idempotency_key="fault-1")
    assert e.value.code == code
    assert "Traceback" not in e.value.message
    if code == "inpaint_busy":
        assert e.value.retry_after == 7
    # The request id and deadline went to the worker.
    assert seen[0].headers["x-request-id"] and float(seen[0].headers["x-request-timeout"]) <= 0.5
    assert [v.id for v in c.get_session(sid).versions] == [v1]
    # The failed request released its Idempotency-Key: a retry runs again (and fails again).
    with pytest.raises(error):
        c.remove(sid, mask_id, idempotency_key="fault-1")
    assert len(seen) == 2


def test_redis_down_is_503_then_recovers_without_restart(
    procs: ProcessFactory, make_gateway
) -> None:  # type: ignore[no-untyped-def]
    redis = procs.redis(appendonly=True)
    tc = make_gateway(redis_url=redis.url, redis_timeout_s=1.0)
    c = LviClient("http://gateway", "alice-key", http_client=tc)
    sid, v1, _ = _prepared(c)
    redis.kill()
    with pytest.raises(ServiceUnavailableError) as e:
        c.get_session(sid)
    assert e.value.code == "session_store_unavailable"
    assert tc.get("/readyz").status_code == 503
    assert tc.get("/healthz").status_code == 200  # the process itself is fine
    redis.start()
    deadline = time.monotonic() + 20
    while True:
        try:
            session = c.get_session(sid)
            break
        except ServiceUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert session.head == v1  # AOF kept it
    assert c.upload_image(sid, img.png(img.photo(W, H, seed=9))).parent == v1
    time.sleep(1.6)  # /readyz answers from a probe at most 1.5 s old
    assert tc.get("/readyz").status_code == 200
