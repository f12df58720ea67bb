"""What every route shares: content negotiation and SSE rendering (dependencies: deps.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from lvi.contracts.gateway import Action, ChatDelta, ChatReply, PlanReply, ProgressEvent, Version
from lvi.images import EncodedImage
from lvi.sse import Event, as_is, once, stream_response, wants_stream

from ..idempotency import EditContext, Idempotency, Replay

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": "Error envelope", "content": {"application/json": {}}}
    for code in (400, 401, 404, 409, 413, 415, 422, 429, 502, 503, 504)
}


def _event(item: Any) -> Event:
    """A workflow's item as its SSE event (the event names are the public contract's)."""
    if isinstance(item, ProgressEvent):
        return {"event": "progress", "data": item.model_dump_json()}
    if isinstance(item, Version):
        return {"event": "result", "data": item.model_dump_json()}
    if isinstance(item, ChatDelta):
        return {"event": "delta", "data": item.model_dump_json()}
    if isinstance(item, ChatReply):
        return {"event": "done", "data": item.model_dump_json()}
    if isinstance(item, PlanReply):  # chat with act: the plan first, then each step's result
        return {"event": "plan", "data": item.model_dump_json()}
    if isinstance(item, Action):
        return {"event": "action", "data": item.model_dump_json()}
    if isinstance(item, BaseModel):
        return {"event": "result", "data": item.model_dump_json()}
    return {"event": "result", "data": json.dumps(item)}


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
        replayed = {"Idempotent-Replayed": "true"}
        if stream:
            data = ctx.body if isinstance(ctx.body, str) else json.dumps(ctx.body)
            return await stream_response(
                once({"event": ctx.event, "data": data}), as_is, headers=replayed
            )
        return JSONResponse(ctx.body, status_code=ctx.status, headers=replayed)
    assert steps is not None
    events = idem.run(workflow, ctx, steps)
    if not stream:
        last: Any = None
        async for item in events:
            last = item
        if isinstance(last, EncodedImage):  # a preview: the image itself, nothing stored
            base = str(ctx.base.id) if ctx.base else ""
            return Response(
                last.data,
                status_code=200,
                media_type=last.mime_type,
                headers={"X-Base-Version": base, "Cache-Control": "no-store"},
            )
        body = last.model_dump(mode="json") if isinstance(last, BaseModel) else last
        headers = {"ETag": f'"{last.id}"'} if isinstance(last, Version) else None
        return JSONResponse(body, status_code=status, headers=headers)
    return await stream_response(events, _event, ping=10)
