"""Load: many concurrent sessions run mixed workflows through the gateway (fast backends) for
a bounded time. Passes when no request got a 5xx, nothing acknowledged was lost, no version
appeared that no client was told about, every session's version graph is consistent and
every image's bytes match its hash. Throughput and p50/p99 latency go into the report.

Short here (``LOAD_SESSIONS`` 50 for ``LOAD_SECONDS`` 4); ``make load`` runs the long one.
429s (rate limit, a worker's full queue) are counted apart and retried, as a client would.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from integration.conftest import Stack
from reliability.common import API_KEYS, fknob, knob, start_gateway
from reliability.traffic import DEFAULT_WEIGHTS, Traffic, TrafficConfig, verify

SESSIONS = knob("LOAD_SESSIONS", 50, 200)
SECONDS = fknob("LOAD_SECONDS", 4.0, 60.0)


def _config(stack: Stack, gateways: list[str], **kw: Any) -> TrafficConfig:
    weights = dict(DEFAULT_WEIGHTS)
    if "llava" in stack.workers:
        weights["chat"] = 3
    return TrafficConfig(
        gateways=gateways,
        keys=API_KEYS,
        sessions=SESSIONS,
        seconds=SECONDS,
        weights=weights,
        retry=False,  # nothing fails here: an unknown outcome is itself a finding
        **kw,
    )


def _check(traffic: Traffic, gateway: str, scenario: dict[str, Any]) -> None:
    summary = traffic.stats.summary()
    verdict = verify(gateway, traffic.ledgers, images="all")
    scenario.update(
        sessions=len(traffic.ledgers),
        seconds=summary["seconds"],
        requests=summary["requests"],
        throughput_rps=summary["throughput_rps"],
        ok_rps=summary["ok_rps"],
        p50_ms=summary["p50_ms"],
        p99_ms=summary["p99_ms"],
        server_errors=summary["server_errors"],
        rate_limited=summary["rate_limited"],
        conflicts=summary["conflicts"],
        transport_errors=summary["transport_errors"],
        versions=verdict.versions_acked,
        lost_updates=len(verdict.lost),
        phantom_versions=len(verdict.phantom),
        graph_errors=len(verdict.graph),
        load=summary,
        verdict=verdict.summary(),
    )
    setup = traffic.setup_stats
    assert setup.server_errors == 0, setup.problems[:5]
    assert summary["server_errors"] == 0, summary["problems"]
    assert summary["transport_errors"] == 0, summary["codes"]
    assert not traffic.stats.problems, traffic.stats.problems[:10]
    assert not verdict.problems, verdict.problems[:10]
    assert len(traffic.ledgers) == SESSIONS
    assert summary["ok"] > SESSIONS, "the run made almost no progress"
    assert verdict.versions_acked > SESSIONS


def test_load_one_gateway(rel_stack: Stack, scenario: dict[str, Any]) -> None:
    gw = rel_stack.gateways[0].url
    traffic = Traffic(_config(rel_stack, [gw]))
    traffic.run_sync()
    _check(traffic, gw, scenario)


def test_burst_beyond_the_redis_pool_is_served(rel_stack: Stack, scenario: dict[str, Any]) -> None:
    """More requests at once than the gateway's Redis pool has connections (redis-py's
    asyncio pool holds 100 by default) on a freshly started gateway: Redis is healthy, so
    none may get a 503. Found by the long load run, whose 200 sessions were created at once."""
    gw = start_gateway(rel_stack)
    burst = 200

    async def run() -> list[int]:
        limits = httpx.Limits(max_connections=burst, keepalive_expiry=2.0)
        async with httpx.AsyncClient(base_url=gw.url, limits=limits, timeout=60) as c:
            auth = {"Authorization": f"Bearer {API_KEYS[0]}"}
            rs = await asyncio.gather(
                *(c.post("/v1/sessions", headers=auth, json={}) for _ in range(burst))
            )
            return [r.status_code for r in rs]

    try:
        statuses = Counter(asyncio.run(run()))
        too_many = "Too many connections" in gw.log_tail(2000)
    finally:
        gw.stop()
    scenario.update(burst=burst, served=statuses[201], refused_503=statuses[503])
    scenario["statuses"] = dict(statuses)
    scenario["gateway_log_says_too_many_connections"] = too_many
    assert statuses == Counter({201: burst}), (
        f"{dict(statuses)}; gateway log mentions 'Too many connections': {too_many}"
    )


@pytest.fixture(scope="module")
def second_gateway(rel_stack: Stack) -> str:
    gw = start_gateway(rel_stack)
    return gw.url


def test_load_two_gateways_one_redis(
    rel_stack: Stack, second_gateway: str, scenario: dict[str, Any]
) -> None:
    """The same load spread over two gateway processes; every request picks one at random,
    so each session's reads and writes alternate between processes. A tenth of the sessions
    have two users editing with If-Match at once: one wins, the other gets 409, none lost."""
    gws = [rel_stack.gateways[0].url, second_gateway]
    traffic = Traffic(_config(rel_stack, gws, racers=max(2, SESSIONS // 10), seed=2))
    traffic.run_sync()
    _check(traffic, gws[1], scenario)
    scenario["gateways"] = 2
