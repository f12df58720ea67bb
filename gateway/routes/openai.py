"""OpenAI-compatible ``POST /v1/chat/completions`` and ``GET /v1/models``, passed to the
llava worker with the gateway's auth and rate limit, so any OpenAI client can use the stack
statelessly."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from lvi.contracts import llava
from lvi.sse import Event, data_error, stream_response

from ..deps import ClientsDep, PrincipalDep
from .common import ERRORS


def _relayed(event: tuple[str, str]) -> Event:
    """A worker's event as the client's: OpenAI streams are bare ``data:`` lines."""
    return {"data": event[1]}


def build_router() -> APIRouter:
    router = APIRouter(tags=["openai"], responses=ERRORS)

    @router.post(
        "/v1/chat/completions",
        response_model=llava.ChatCompletionResponse,
        summary="OpenAI-compatible chat completions (SSE when stream).",
    )
    async def chat_completions(
        body: llava.ChatCompletionRequest,
        who: PrincipalDep,
        clients: ClientsDep,
    ) -> Response:
        worker = clients["llava"]
        payload = body.model_dump_json(exclude_none=True)
        if not body.stream:
            raw = await worker.request("POST", "/v1/chat/completions", content=payload)
            return Response(raw, media_type="application/json")
        # The worker's stream is opened before answering, so that a worker that is down or
        # busy is a plain 503/429 rather than a broken stream. Its ``data:`` lines (chunks,
        # then ``[DONE]``) are relayed as they are.
        return await stream_response(
            worker.stream("/v1/chat/completions", body), _relayed, error=data_error
        )

    @router.get(
        "/v1/models", response_model=llava.ModelList, summary="OpenAI-compatible model list."
    )
    async def models(who: PrincipalDep, clients: ClientsDep) -> Response:
        raw = await clients["llava"].request("GET", "/v1/models")
        return Response(raw, media_type="application/json")

    return router


__all__ = ["JSONResponse", "build_router"]
