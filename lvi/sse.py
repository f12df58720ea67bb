"""Server-sent events for every streaming route (gateway, OpenAI passthrough, workers).

:func:`stream_response` is the one "first event, then relay" answer: the producer runs up to
its first event *before* the response starts, so anything it refuses up front (a full queue,
bad input, a worker that is down) is still a plain HTTP error with its own status and the
error envelope; after that the status is sent, and a failure becomes one last error event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
from fastapi import Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from lvi.errors import LviError

log = logging.getLogger("lvi.sse")

EVENT_STREAM = "text/event-stream"
Event = dict[str, str]
"""One server-sent event as sse-starlette takes it: ``{"event": ..., "data": ...}``."""
T = TypeVar("T")

DONE: Event = {"data": "[DONE]"}
"""The end of an OpenAI-style stream."""


def wants_stream(request: Request) -> bool:
    """Did the caller ask for server-sent events (``Accept: text/event-stream``)?"""
    return EVENT_STREAM in request.headers.get("accept", "").lower()


def error_event(envelope: dict[str, Any]) -> Event:
    """A failure after the stream started: ``event: error`` carrying the envelope."""
    return {"event": "error", "data": json.dumps(envelope)}


def data_error(envelope: dict[str, Any]) -> Event:
    """A failure in an OpenAI-style stream: a bare ``data:`` envelope (what OpenAI clients
    expect), and no ``[DONE]``."""
    return {"data": json.dumps(envelope)}


def as_is(event: Event) -> Event:
    """For producers that already yield events."""
    return event


def envelope_of(exc: BaseException) -> dict[str, Any]:
    """The envelope a client sees for a failure inside a stream (no trace leaves)."""
    if isinstance(exc, LviError):
        log.warning("stream ended with an error: %s", exc.message)
        return exc.envelope()
    log.exception("unhandled error in a stream", exc_info=exc)
    return LviError("Internal server error.").envelope()


async def _no_close() -> None:
    return None


async def stream_response(
    events: AsyncIterator[T],
    encode: Callable[[T], Event],
    *,
    error: Callable[[dict[str, Any]], Event] = error_event,
    end: Event | None = None,
    close: Callable[[], Awaitable[None]] | None = None,
    headers: Mapping[str, str] | None = None,
    ping: int = 15,
) -> Response:
    """Await ``events``' first item, then answer every item as ``text/event-stream``.

    An :class:`~lvi.errors.LviError` before the first item is answered as the JSON error
    envelope with its status (not a 200 stream); any other exception propagates to the app's
    handlers. ``encode`` turns an item into an event, ``error`` an envelope into the last
    event, ``end`` (if any) follows the last item. ``close`` (default: ``events.aclose``)
    runs whatever happens, also when the client goes away: it is what stops the producer.
    """
    closer = close or getattr(events, "aclose", None) or _no_close
    first: list[T] = []
    try:
        first.append(await anext(events))
    except StopAsyncIteration:
        pass
    except BaseException as e:
        with anyio.CancelScope(shield=True):
            await closer()
        if isinstance(e, LviError):
            return e.response()
        raise
    return EventSourceResponse(
        _relay(first, events, encode, error, end, closer), headers=headers, ping=ping
    )


async def _relay(
    first: list[T],
    events: AsyncIterator[T],
    encode: Callable[[T], Event],
    error: Callable[[dict[str, Any]], Event],
    end: Event | None,
    close: Callable[[], Awaitable[None]],
) -> AsyncIterator[Event]:
    try:
        for item in first:
            yield encode(item)
        async for item in events:
            yield encode(item)
        if end is not None:
            yield end
    except Exception as e:
        yield error(envelope_of(e))
    finally:
        # On a client disconnect sse-starlette cancels this task; the shield lets the
        # producer close (stop the worker or the generation, free the slot, give an
        # Idempotency-Key back).
        with anyio.CancelScope(shield=True):
            await close()


async def once(event: Event) -> AsyncIterator[Event]:
    """A stream of one event (a replayed answer)."""
    yield event


__all__ = [
    "DONE",
    "EVENT_STREAM",
    "Event",
    "as_is",
    "data_error",
    "envelope_of",
    "error_event",
    "once",
    "stream_response",
    "wants_stream",
]
