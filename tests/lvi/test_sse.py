"""lvi.sse: the first event decides between an error response and a stream; the producer is
always closed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient

from lvi.errors import BadGateway, RateLimited, install_error_handlers
from lvi.sse import DONE, Event, data_error, stream_response, wants_stream


def make_app(closed: list[str]) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    async def produce(fail_at: int | None, n: int = 2) -> AsyncIterator[int]:
        try:
            for i in range(n):
                if i == fail_at:
                    if i == 0:
                        raise RateLimited("busy", retry_after=3)
                    raise BadGateway("worker died")
                yield i
        finally:
            closed.append("closed")

    def encode(i: int) -> Event:
        return {"event": "progress", "data": json.dumps({"step": i})}

    @app.get("/events")
    async def events(request: Request, fail_at: int | None = None) -> Response:
        assert wants_stream(request)
        return await stream_response(produce(fail_at), encode)

    @app.get("/openai")
    async def openai(fail_at: int | None = None) -> Response:
        chunks = produce(fail_at)
        return await stream_response(chunks, lambda i: {"data": str(i)}, error=data_error, end=DONE)

    return app


def frames(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(("event:", "data:"))]


ACCEPT = {"Accept": "text/event-stream"}


def test_an_error_before_the_first_event_is_a_plain_error_response() -> None:
    closed: list[str] = []
    c = TestClient(make_app(closed))
    r = c.get("/events", params={"fail_at": 0}, headers=ACCEPT)
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert closed == ["closed"]


def test_events_then_an_error_event_and_the_producer_closed() -> None:
    closed: list[str] = []
    c = TestClient(make_app(closed))
    r = c.get("/events", headers=ACCEPT)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert frames(r.text) == [
        "event: progress",
        'data: {"step": 0}',
        "event: progress",
        'data: {"step": 1}',
    ]
    r = c.get("/events", params={"fail_at": 1}, headers=ACCEPT)
    got = frames(r.text)
    assert got[:2] == ["event: progress", 'data: {"step": 0}'] and got[2] == "event: error"
    assert json.loads(got[3][5:])["error"]["code"] == "bad_gateway"
    assert closed == ["closed", "closed"]


def test_openai_style_streams_end_with_done_or_a_data_envelope() -> None:
    c = TestClient(make_app([]))
    assert frames(c.get("/openai", headers=ACCEPT).text) == ["data: 0", "data: 1", "data: [DONE]"]
    got = frames(c.get("/openai", params={"fail_at": 1}, headers=ACCEPT).text)
    assert got[0] == "data: 0" and json.loads(got[1][5:])["error"]["type"] == "upstream_error"
    assert "data: [DONE]" not in got
