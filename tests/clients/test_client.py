"""The SDK against a fake gateway (httpx MockTransport): the sync and the async client run the
same calls, so every test runs both."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from lvi_client import (
    APIConnectionError,
    AsyncLviClient,
    ChatDelta,
    ChatReply,
    ConflictError,
    GatewayTimeoutError,
    LviClient,
    RateLimitError,
    ServiceUnavailableError,
    UnprocessableEntityError,
    Version,
    error_from_envelope,
)
from lvi_client.errors import STATUS_TYPES, status_of_type

VERSION = {
    "id": 2,
    "parent": 1,
    "operation": "remove",
    "image_hash": "h",
    "content_type": "image/png",
    "bytes": 10,
    "width": 4,
    "height": 4,
    "created_at": 0.0,
    "image_url": "/v1/sessions/s/images/2",
}
MESSAGE = {"role": "user", "content": "hi", "version": 1, "created_at": 0.0}
REPLY = {"reply": {**MESSAGE, "role": "assistant", "content": "hello"}, "user": MESSAGE}
SESSION = {
    "id": "s",
    "created_at": 0.0,
    "updated_at": 0.0,
    "head": None,
    "can_undo": False,
    "can_redo": False,
    "bytes": 0,
    "versions": [],
    "masks": [],
    "messages": [],
}


def sse(*events: tuple[str, Any]) -> bytes:
    """Events as a gateway frames them (sse-starlette: CRLF, pings)."""
    out = ": ping\r\n\r\n"
    for name, data in events:
        out += f"event: {name}\r\ndata: {json.dumps(data)}\r\n\r\n"
    return out.encode()


def envelope(etype: str, code: str, message: str = "no") -> dict[str, Any]:
    return {"error": {"type": etype, "message": message, "code": code, "param": None}}


def gateway(request: httpx.Request) -> httpx.Response:
    """Just enough of the gateway's API."""
    path, streamed = request.url.path, "text/event-stream" in request.headers.get("accept", "")
    event_stream = {"content-type": "text/event-stream"}
    if path == "/v1/sessions":
        assert request.headers["idempotency-key"] and request.headers["authorization"] == "Bearer k"
        return httpx.Response(201, json=SESSION)
    if path == "/readyz":
        return httpx.Response(503, json={"status": "not_ready", "redis": "down", "workers": []})
    if path == "/v1/sessions/s/remove":
        assert request.headers["if-match"] == '"1"'
        if not streamed:
            return httpx.Response(201, json=VERSION)
        body = sse(("progress", {"stage": "inpaint"}), ("result", VERSION))
        return httpx.Response(200, content=body, headers=event_stream)
    if path == "/v1/sessions/s/generate":  # a replayed request: JSON although streamed
        return httpx.Response(201, json=VERSION, headers={"idempotent-replayed": "true"})
    if path == "/v1/sessions/s/inpaint":
        body = sse(("progress", {"stage": "generate"}), ("error", envelope("timeout_error", "t")))
        return httpx.Response(200, content=body, headers=event_stream)
    if path == "/v1/sessions/s/chat":
        body = sse(("delta", {"content": "hel"}), ("delta", {"content": "lo"}), ("done", REPLY))
        return httpx.Response(200, content=body, headers=event_stream)
    if path == "/v1/sessions/s/undo":
        headers = {"x-request-id": "r1"}
        return httpx.Response(409, json=envelope("conflict_error", "head_moved"), headers=headers)
    if path == "/v1/sessions/s/redo":
        headers = {"retry-after": "3"}
        return httpx.Response(429, json=envelope("rate_limit_error", "busy"), headers=headers)
    if path == "/v1/sessions/gone":
        raise httpx.ConnectError("refused", request=request)
    return httpx.Response(404, json=envelope("not_found_error", "not_found"))


class AsyncAsSync:
    """The async client driven through the sync client's interface (one event loop per call)."""

    def __init__(self, client: AsyncLviClient) -> None:
        self._client = client
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if hasattr(result, "__aiter__"):
                return self._loop.run_until_complete(_collect(result))
            return self._loop.run_until_complete(result)

        return call

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


async def _collect(items: Any) -> list[Any]:
    return [item async for item in items]


@pytest.fixture(params=["sync", "async"])
def lvi(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "sync":
        sync = LviClient("http://gw", api_key="k", transport=httpx.MockTransport(gateway))
        yield sync
        sync.close()
    else:
        client = AsyncLviClient("http://gw", api_key="k", transport=httpx.MockTransport(gateway))
        wrapped = AsyncAsSync(client)
        yield wrapped
        wrapped.close()


def test_plain_calls_parse_their_models(lvi: Any) -> None:
    assert lvi.create_session().id == "s"
    assert lvi.ready().status == "not_ready"  # readiness answers 503 without raising
    assert lvi.remove("s", "m1", if_match=1).id == 2


def test_progress_events_then_the_result(lvi: Any) -> None:
    seen: list[str] = []
    v = lvi.remove("s", "m1", if_match=1, on_progress=lambda e: seen.append(e.stage))
    assert isinstance(v, Version) and v.id == 2 and seen == ["inpaint"]
    # A replayed request answers JSON even to a streamed call.
    assert lvi.generate("s", "a cat", on_progress=seen.append).id == 2


def test_chat_stream_yields_deltas_then_the_reply(lvi: Any) -> None:
    items = list(lvi.chat_stream("s", "hi"))
    assert [type(i) for i in items] == [ChatDelta, ChatDelta, ChatReply]
    assert "".join(i.content for i in items[:2]) == items[2].reply.content


def test_errors_are_typed(lvi: Any) -> None:
    with pytest.raises(ConflictError) as conflict:
        lvi.undo("s")
    assert conflict.value.code == "head_moved" and conflict.value.request_id == "r1"
    with pytest.raises(RateLimitError) as busy:
        lvi.redo("s")
    assert busy.value.retry_after == 3.0
    with pytest.raises(GatewayTimeoutError) as late:  # an error event: status from its type
        lvi.inpaint("s", [[0, 0, 2, 2]], ["a cat"], on_progress=lambda e: None)
    assert late.value.status == 504 and late.value.code == "t"
    with pytest.raises(UnprocessableEntityError, match="dx"):
        lvi.move("s", "m1", dx=10**9, dy=0)  # validated locally, no round trip
    with pytest.raises(APIConnectionError):
        lvi.get_session("gone")


def test_every_type_maps_back_to_a_status_of_that_type() -> None:
    for etype, _ in STATUS_TYPES.values():
        assert STATUS_TYPES[status_of_type(etype)][0] == etype
    assert status_of_type("service_unavailable") == 503
    assert status_of_type("no_such_type", default=502) == 502
    err = error_from_envelope(None, json.dumps(envelope("service_unavailable", "seem_down")))
    assert isinstance(err, ServiceUnavailableError) and err.status == 503
