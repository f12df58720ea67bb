"""What every route shares: content negotiation and SSE rendering (dependencies: deps.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse

from lvi.contracts.gateway import EVENT_STREAM, ChatDelta, ChatReply, ProgressEvent, Version
from lvi.errors import LviError, error_response

from ..idempotency import EditContext, Idempotency, Replay

log = logging.getLogger("lvi.gateway.routes")

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": "Error envelope", "content": {"application/json": {}}}
    for code in (400, 401, 404, 409, 413, 415, 422, 429, 502, 503, 504)
}


def wants_stream(request: Request) -> bool:
    return EVENT_STREAM in request.headers.get("accept", "")


def _event(item: Any) -> dict[str, str]:
    if isinstance(item, ProgressEvent):
        return {"event": "progress", "data": item.model_dump_json()}
    if isinstance(item, Version):
        return {"event": "result", "data": item.model_dump_json()}
    if isinstance(item, ChatDelta):
        return {"event": "delta", "data": item.model_dump_json()}
    if isinstance(item, ChatReply):
        return {"event": "done", "data": item.model_dump_json()}
    if isinstance(item, BaseModel):
        return {"event": "result", "data": item.model_dump_json()}
    return {"event": "result", "data": json.dumps(item)}


def _error_event(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, LviError):
        body = exc.envelope()
    else:
        log.exception("unhandled error in a stream", exc_info=exc)
        body = json.loads(bytes(error_response(500, "Internal server error.").body))
    return {"event": "error", "data": json.dumps(body)}


async def respond(
    request: Request,
    idem: Idempotency,
    workflow: str,
    ctx: EditContext | Replay,
    steps: AsyncIterator[Any] | None,
    *,
    status: int = 201,
    stream: bool | None = None,
) -> Response:
    """Run a workflow and answer with its final item as JSON, or stream its events (SSE).

    For a stream, the workflow runs up to its first event *before* the response starts, so
    anything it refuses up front (404 mask, 422 size, 503 worker down...) is still a plain
    HTTP error; later failures become an ``event: error`` carrying the envelope.
    """
    stream = wants_stream(request) if stream is None else stream
    if isinstance(ctx, Replay):
        if stream:
            data = ctx.body if isinstance(ctx.body, str) else json.dumps(ctx.body)

            async def replay() -> AsyncIterator[dict[str, str]]:
                yield {"event": ctx.event, "data": data}

            return EventSourceResponse(replay(), headers={"Idempotent-Replayed": "true"})
        return JSONResponse(
            ctx.body, status_code=ctx.status, headers={"Idempotent-Replayed": "true"}
        )
    assert steps is not None
    events = idem.run(workflow, ctx, steps)
    if not stream:
        last: Any = None
        async for item in events:
            last = item
        body = last.model_dump(mode="json") if isinstance(last, BaseModel) else last
        headers = {"ETag": f'"{last.id}"'} if isinstance(last, Version) else None
        return JSONResponse(body, status_code=status, headers=headers)
    try:
        first = await anext(events)
    except StopAsyncIteration:  # pragma: no cover - every workflow yields a result
        first = None

    async def sse() -> AsyncIterator[dict[str, str]]:
        try:
            if first is not None:
                yield _event(first)
            async for item in events:
                yield _event(item)
        except Exception as e:
            yield _error_event(e)
        finally:
            # On a client disconnect sse-starlette cancels this task; the shield lets the
            # workflow close its worker stream (which stops the worker) and give its
            # Idempotency-Key back.
            with anyio.CancelScope(shield=True):
                await events.aclose()

    return EventSourceResponse(sse(), ping=10)
