"""The llava worker's FastAPI app: OpenAI-compatible chat completions, thin routes over a
:class:`~services.llava.service.ChatService`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from lvi.contracts.llava import (
    TRUNCATED_HEADER,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ModelList,
)
from lvi.errors import ErrorEnvelope, NotFound
from lvi.sse import DONE, Event, data_error, stream_response
from lvi.worker import Deadline, DeadlineDep, create_worker_app
from services.llava.backends import build_backend
from services.llava.service import ChatService, LocalChat, StreamHandle, UpstreamChat
from services.llava.settings import LlavaSettings

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 413, 415, 422, 429, 502, 503, 504)
}

TRUNCATION_DOC = {
    TRUNCATED_HEADER: {
        "description": "How many of the oldest turns were dropped to fit the model's context.",
        "schema": {"type": "integer"},
    }
}

# One server-sent event of a streamed reply: ``data`` is a ChatCompletionChunk as JSON, an
# error envelope as JSON, or the final ``[DONE]``.
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}},
    "required": ["data"],
}


def get_chat(request: Request) -> ChatService:
    chat: ChatService = request.app.state.chat
    return chat


def chunk_event(data: str) -> Event:
    """One delta of a streamed reply: a ``data:`` ChatCompletionChunk (OpenAI's format)."""
    return {"data": data}


async def stream_reply(handle: StreamHandle) -> Response:
    """SSE in OpenAI's format: one ``data:`` JSON chunk per delta, then ``data: [DONE]``.

    An error after the stream has started cannot change the status any more; it is sent as
    a ``data:`` error envelope (what OpenAI clients expect) and the stream ends. Closing the
    handle, whatever happens, is what stops the generation and frees the slot.
    """
    return await stream_response(
        handle.data,
        chunk_event,
        error=data_error,
        end=DONE,
        close=handle.close,
        headers=handle.headers,
    )


#: The generic name every LLaVA worker answers to, whatever its model id (docs and SDK use it).
GENERIC_MODEL = "llava"


def check_model(svc: ChatService, model: str | None) -> None:
    """OpenAI's answer to a model name this worker does not serve: 404 ``model_not_found``
    (an empty or missing name means the served model)."""
    if not model:
        return
    served = {card.id for card in svc.models().data} | {GENERIC_MODEL}
    if model not in served:
        raise NotFound(
            f"The model '{model[:256]}' does not exist; this worker serves "
            f"{', '.join(sorted(served))}.",
            code="model_not_found",
            param="model",
        )


def build_router() -> APIRouter:
    router = APIRouter(tags=["llava"], responses=ERRORS)

    @router.get("/v1/models", response_model=ModelList, summary="The model this worker serves.")
    async def models(request: Request) -> ModelList:
        return get_chat(request).models()

    @router.post(
        "/v1/chat/completions",
        response_model=ChatCompletionResponse,
        summary="OpenAI-compatible chat about images (SSE with stream=true).",
        responses={
            200: {
                "headers": TRUNCATION_DOC,
                "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
            },
            404: {"description": "model_not_found: a model this worker does not serve."},
        },
    )
    async def chat_completions(
        req: ChatCompletionRequest, request: Request, deadline: Deadline = DeadlineDep
    ) -> Response:
        svc = get_chat(request)
        check_model(svc, req.model)
        chat = svc.parse(req)
        if chat.stream:
            return await stream_reply(await svc.stream(chat, deadline))
        body, headers = await svc.complete(chat, deadline, request.is_disconnected)
        return JSONResponse(body, headers=headers)

    return router


def create_app(settings: LlavaSettings | None = None, backend: Any | None = None) -> FastAPI:
    """App factory: ``backend`` may be injected (tests); by default it is built from settings."""
    settings = settings or LlavaSettings()
    backend = backend or build_backend(settings)
    app = create_worker_app(
        "llava",
        settings,
        backend,
        build_router(),
        description="Visual chat (LLaVA family), OpenAI-compatible, streaming, multi-turn.",
    )
    from services.llava.upstream import OpenAIUpstream

    runtime = app.state.runtime
    app.state.chat = (
        UpstreamChat(runtime, backend)
        if isinstance(backend, OpenAIUpstream)
        else LocalChat(runtime, backend)
    )
    return app
