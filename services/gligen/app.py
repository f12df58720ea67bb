"""The gligen worker's FastAPI app: thin routes over the backend ``GLIGEN_BACKEND`` names.

``POST /v1/generate`` answers JSON, or server-sent events with ``Accept: text/event-stream``
(the event format is documented in :mod:`lvi.contracts.gligen`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

from lvi.contracts.gligen import (
    EVENT_PROGRESS,
    EVENT_RESULT,
    EVENT_START,
    GenerateRequest,
    GenerateResponse,
    Progress,
    Started,
)
from lvi.errors import ErrorEnvelope
from lvi.sse import Event, stream_response, wants_stream
from lvi.worker import Deadline, DeadlineDep, RuntimeDep, WorkerRuntime, create_worker_app
from services.gligen.backends import build_backend
from services.gligen.settings import GligenSettings

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 413, 415, 422, 429, 503, 504)
}
STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON result, or with `Accept: text/event-stream` a stream of `start`, "
        "`progress` (one per step), then `result` or `error` events.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def sse_event(item: Any) -> Event:
    """One item of the runtime's stream as an SSE message."""
    if isinstance(item, tuple) and item and item[0] == "result":
        result: BaseModel = item[1]
        return {"event": EVENT_RESULT, "data": result.model_dump_json()}
    if isinstance(item, Progress):
        return {"event": EVENT_PROGRESS, "data": item.model_dump_json()}
    if isinstance(item, Started):
        return {"event": EVENT_START, "data": item.model_dump_json()}
    raise TypeError(f"unexpected stream item {type(item).__name__}")


async def open_stream(rt: WorkerRuntime, req: GenerateRequest, deadline: Deadline) -> Response:
    """Start the run and return its event stream.

    The first event (``start``) is awaited before the response begins, so that everything
    that can fail before the run (a full queue, bad input, a corrupt image) still answers
    with its own HTTP status instead of a 200 stream holding an error. When the client
    disconnects, closing the runtime's stream sets the job's cancel flag, so the backend
    stops at its next step.
    """
    events = rt.stream(rt.backend.generate, req, deadline=deadline)
    # A failure after the start is the last event: ``event: error`` (EVENT_ERROR) with the
    # envelope, lvi.sse's default.
    return await stream_response(events, sse_event)


def build_router() -> APIRouter:
    router = APIRouter(tags=["gligen"], responses=ERRORS)

    @router.post(
        "/v1/generate",
        response_model=GenerateResponse,
        responses=STREAM_DOC,
        summary="Grounded generation, or grounded inpainting when an image is given.",
    )
    async def generate(
        req: GenerateRequest,
        request: Request,
        rt: WorkerRuntime = RuntimeDep,
        deadline: Deadline = DeadlineDep,
    ) -> Any:
        if wants_stream(request):
            return await open_stream(rt, req, deadline)
        return await rt.run(
            rt.backend.generate, req, deadline=deadline, disconnected=request.is_disconnected
        )

    return router


def create_app(settings: GligenSettings | None = None, backend: object | None = None) -> FastAPI:
    """App factory: ``backend`` may be injected (tests); by default it is built from settings."""
    settings = settings or GligenSettings()
    backend = backend or build_backend(settings)
    return create_worker_app(
        "gligen",
        settings,
        backend,
        build_router(),
        description="Grounded text-to-image and grounded inpainting (GLIGEN) at full resolution.",
    )
