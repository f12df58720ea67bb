"""Failed-auth throttling per client address, against a real gateway process."""

from __future__ import annotations

import httpx
import pytest
from support.procs import ProcessFactory, ServerProcess

from gateway.auth_throttle import FailedAuthThrottle


def test_throttle_window_moves_on() -> None:
    now = [0.0]
    t = FailedAuthThrottle(3, 60.0, clock=lambda: now[0])
    for _ in range(3):
        t.check("1.2.3.4")
        t.failed("1.2.3.4")
    with pytest.raises(Exception) as e:
        t.check("1.2.3.4")
    assert getattr(e.value, "status", None) == 429
    t.check("5.6.7.8")  # another address is not affected
    now[0] = 61.0
    t.check("1.2.3.4")


def test_a_thousand_wrong_keys_are_throttled(
    procs: ProcessFactory, redis_server: ServerProcess
) -> None:
    gw = procs.lvi(
        "gateway",
        env={
            "GATEWAY_REDIS_URL": redis_server.url,
            "GATEWAY_API_KEYS": "alice:alice-key",
            "GATEWAY_AUTH_FAILURES_PER_MINUTE": "20",
        },
        ready_path="/readyz",
    )
    codes: dict[int, int] = {}
    with httpx.Client(base_url=gw.url, timeout=30) as client:
        for i in range(1000):
            r = client.get("/v1/models", headers={"Authorization": f"Bearer wrong-{i}"})
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
        assert codes == {401: 20, 429: 980}, codes
        r = client.get("/v1/models", headers={"Authorization": "Bearer alice-key"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == "auth_throttled"
