"""Small pieces of the gateway that need no server: the circuit breaker, SSE decoding,
box normalisation, If-Match parsing, API keys, and the session key layout."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from redis.crc import key_slot

from gateway.auth import ApiKeyAuth
from gateway.clients import CircuitBreaker, WorkerClient
from gateway.idempotency import idem_lease_s, parse_if_match
from gateway.routes.health import random_skills
from gateway.sessions import SessionKeys, load_scripts
from gateway.settings import GatewaySettings
from gateway.workflows.generate import normalise_box
from lvi.contracts import gligen
from lvi.contracts.gateway import WorkerStatus
from lvi.errors import BadGateway, BadRequest, Unauthorized, Unprocessable
from lvi_client import ConflictError, ServiceUnavailableError, error_from_envelope


def test_circuit_breaker_opens_half_opens_and_closes() -> None:
    b = CircuitBreaker(failures=2, reset_s=0.05)
    assert b.allow() and b.state == "closed"
    b.failure()
    assert b.state == "closed"
    b.failure()
    assert b.state == "open" and not b.allow() and b.retry_after() > 0
    time.sleep(0.06)
    assert b.state == "half_open"
    assert b.allow() and not b.allow()  # one trial at a time
    b.failure()  # the trial failed: open again
    assert b.state == "open"
    time.sleep(0.06)
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow()


def _worker(body: bytes, content_type: str = "text/event-stream") -> WorkerClient:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept"] == "text/event-stream"
        return httpx.Response(200, content=body, headers={"content-type": content_type})

    http = httpx.AsyncClient(base_url="http://gligen", transport=httpx.MockTransport(answer))
    return WorkerClient("gligen", "http://gligen", 5.0, http, CircuitBreaker(3, 1.0))


def _events(w: WorkerClient) -> list[tuple[str, str]]:
    async def run() -> list[tuple[str, str]]:
        req = gligen.GenerateRequest(prompt="a cat")
        try:
            return [ev async for ev in w.stream("/v1/generate", req)]
        finally:
            await w.aclose()

    return asyncio.run(run())


def test_worker_stream_decodes_sse() -> None:
    """httpx-sse decodes the workers' streams: pings skipped, multi-line data joined."""
    body = (
        b': ping\r\n\r\nevent: progress\r\ndata: {"step": 1,\r\n'
        b'data: "total": 2}\r\n\r\ndata: x\n\n'
    )
    assert _events(_worker(body)) == [("progress", '{"step": 1,\n"total": 2}'), ("message", "x")]
    with pytest.raises(BadGateway, match="instead of an event stream"):
        _events(_worker(b"{}", "application/json"))


def test_error_from_envelope_picks_the_class() -> None:
    body = '{"error": {"type": "conflict_error", "message": "moved", "code": "head_moved", "param": "If-Match"}}'
    e = error_from_envelope(409, body, {"X-Request-ID": "r1"})
    assert isinstance(e, ConflictError) and e.code == "head_moved" and e.request_id == "r1"
    streamed = error_from_envelope(
        None, '{"error": {"type": "service_unavailable", "message": "x", "code": "c"}}'
    )
    assert isinstance(streamed, ServiceUnavailableError) and streamed.status == 503


def test_normalise_box() -> None:
    norm, px = normalise_box([150, 80, -10, 20], 100, 100, param="boxes.0")
    assert norm == [0.0, 0.2, 1.0, 0.8] and px == [0, 20, 100, 80]
    with pytest.raises(Unprocessable):
        normalise_box([200, 200, 300, 300], 100, 100, param="boxes.0")


def test_parse_if_match() -> None:
    assert parse_if_match(None) == "*" and parse_if_match("*") == "*"
    assert (
        parse_if_match('"3"') == 3 and parse_if_match('W/"4"') == 4 and parse_if_match("0") is None
    )
    with pytest.raises(BadRequest):
        parse_if_match("abc")


def test_api_keys() -> None:
    auth = ApiKeyAuth.from_string("alice:k1, alice:k2 ,bob:k3")
    assert auth.authenticate("Bearer k1") == "alice" == auth.authenticate("bearer k2")
    assert auth.authenticate("Bearer k3") == "bob"
    for bad in (None, "", "Bearer", "Bearer k4", "Token k1"):
        with pytest.raises(Unauthorized):
            auth.authenticate(bad)
    assert ApiKeyAuth([], allow_anonymous=True).authenticate(None) == "anonymous"
    with pytest.raises(ValueError):
        ApiKeyAuth.from_string("no-colon")


def test_every_key_of_a_session_is_in_one_cluster_slot() -> None:
    k = SessionKeys("abc123")
    keys = [*k.all(k.idem("deadbeef")), k.idem("other")]
    assert len({key_slot(key.encode()) for key in keys}) == 1
    assert all(key.startswith("lvi:{abc123}:") for key in keys)


def test_idempotency_lease_follows_the_route_s_worker() -> None:
    settings = GatewaySettings(gligen_timeout_s=600, inpaint_timeout_s=120, redis_timeout_s=5)
    assert idem_lease_s("generate", settings) == 630
    assert idem_lease_s("remove", settings) == 150
    assert idem_lease_s("move", settings) == 630  # may regenerate with GLIGEN
    assert idem_lease_s("upload", settings) == idem_lease_s("masks?3", settings) == 40


def test_lua_scripts_are_read_from_the_package_s_files() -> None:
    scripts = load_scripts()
    assert set(scripts) == {
        "create",
        "commit",
        "move_head",
        "add_mask",
        "append_messages",
        "delete",
        "clear_messages",
        "rename",
        "release",
        "quota_session",
        "quota_bytes",
        "quota_job",
    }
    # Every session script starts with the shared prelude (owner check, TTL, idempotency);
    # release (one key) and the quota scripts (a principal's keys) stand alone.
    alone = {"release", "quota_session", "quota_bytes", "quota_job"}
    assert all("local function owned" in src for n, src in scripts.items() if n not in alone)
    assert all("local function owned" not in scripts[n] for n in alone)


def test_random_skills_are_tiny_learned_backends_only() -> None:
    def w(skill: str, profile: str, backend: str) -> WorkerStatus:
        info = {"profile": profile, "backend": backend}
        return WorkerStatus(name=skill, skill=skill, url="u", state="ready", info=info)

    workers = [
        w("segmentation", "tiny", "grabcut"),  # classical: real masks without weights
        w("inpainting", "tiny", "opencv"),
        w("generation", "tiny", "diffusers"),
        w("chat", "gpu", "transformers"),
        WorkerStatus(name="x", skill="x", url="u", state="unreachable"),
    ]
    assert random_skills(workers) == ["generation"]
