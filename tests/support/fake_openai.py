"""A fake OpenAI-compatible chat server (what vLLM looks like from the llava worker).

Every streamed reply is ``FAKE_CHUNKS`` deltas, ``FAKE_DELAY_S`` seconds apart, and the server
serves any number of streams at once (each is its own asyncio task, like vLLM's continuous
batching), so N concurrent chats take about as long as one. Run it as a real process::

    python -m uvicorn --factory support.fake_openai:create_app --port P   (PYTHONPATH=tests)

``GET /stats`` reports the most streams it had open at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

MODEL = "llava-hf/llava-1.5-7b-hf"


def create_app() -> FastAPI:
    """The app; delay and chunk count come from the environment (read here, not at import)."""
    delay = float(os.environ.get("FAKE_DELAY_S", "0.1"))
    chunks = int(os.environ.get("FAKE_CHUNKS", "10"))
    app = FastAPI()
    state = {"open": 0, "max_open": 0, "requests": 0}

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "fake"}]}

    @app.get("/stats")
    async def stats() -> dict[str, int]:
        return dict(state)

    def chunk(cid: str, delta: dict[str, Any], finish: str | None = None) -> str:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body)}\n\n"

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        state["requests"] += 1
        cid = f"chatcmpl-fake{state['requests']}"
        if not body.get("stream"):
            await asyncio.sleep(delay * chunks)
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": MODEL,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "tok " * chunks},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": chunks, "total_tokens": 1},
                }
            )

        async def events() -> AsyncIterator[str]:
            state["open"] += 1
            state["max_open"] = max(state["max_open"], state["open"])
            try:
                yield chunk(cid, {"role": "assistant", "content": ""})
                for _ in range(chunks):
                    await asyncio.sleep(delay)
                    yield chunk(cid, {"content": "tok "})
                yield chunk(cid, {}, finish="stop")
                yield "data: [DONE]\n\n"
            finally:
                state["open"] -= 1

        return StreamingResponse(events(), media_type="text/event-stream")

    return app
