"""OpenAI-compatible ``POST /v1/chat/completions`` and ``GET /v1/models``, passed to the
llava worker with the gateway's auth and rate limit, so any OpenAI client can use the stack
statelessly."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response, StreamingResponse

from lvi.contracts import llava
from lvi.errors import LviError

from ..deps import ClientsDep, PrincipalDep
from .common import ERRORS


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
        events = worker.stream("/v1/chat/completions", body)
        # Open the upstream stream before answering, so that a worker that is down or busy
        # is a plain 503/429 rather than a broken stream.
        first = await anext(events)

        async def relay() -> AsyncIterator[bytes]:
            try:
                for _event, data in [first]:
                    yield f"data: {data}\n\n".encode()
                async for _event, data in events:
                    yield f"data: {data}\n\n".encode()
            except LviError as e:
                import json

                yield f"data: {json.dumps(e.envelope())}\n\n".encode()
            finally:
                await events.aclose()

        return StreamingResponse(
            relay(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get(
        "/v1/models", response_model=llava.ModelList, summary="OpenAI-compatible model list."
    )
    async def models(who: PrincipalDep, clients: ClientsDep) -> Response:
        raw = await clients["llava"].request("GET", "/v1/models")
        return Response(raw, media_type="application/json")

    return router


__all__ = ["JSONResponse", "build_router"]
