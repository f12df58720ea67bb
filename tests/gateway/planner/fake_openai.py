"""A fake OpenAI-compatible chat completions server for the llm planner's tests.

Run as a real process: ``python -m uvicorn fake_openai:app --app-dir tests/gateway/planner``.
The request's ``model`` picks the behaviour, so one server serves every test.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
SEEN: list[dict[str, Any]] = []


def call(name: str, arguments: Any) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": args}}


def completion(tool_calls: list[dict[str, Any]] | None, content: str | None = None) -> Any:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
    }


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/last")
async def last() -> Any:
    return SEEN[-1] if SEEN else {}


@app.post("/v1/chat/completions")
async def chat(request: Request) -> Any:
    body = await request.json()
    SEEN.append({"body": body, "authorization": request.headers.get("authorization")})
    mode = body.get("model")
    names = {t["function"]["name"] for t in body.get("tools", [])}
    if not {"segment", "remove", "ask_user"} <= names:
        return JSONResponse({"error": {"message": "tools missing"}}, status_code=400)
    if mode == "valid":
        return completion([call("segment", {"text": "tree", "select": "left"}),
                           call("remove", {"mask": "previous"})])  # fmt: skip
    if mode == "ask":
        return completion([call("ask_user", {"question": "Which tree?"})])
    if mode == "no-tools":
        return completion(None, "That is a photo of a park.")
    if mode == "invalid-json":
        return completion([call("remove", '{"mask": "previous"')])
    if mode == "unknown-tool":
        return completion([call("delete_session", {"session": "someone-else"})])
    if mode == "invalid-args":
        return completion([call("segment", {"text": "dog"}), call("move", {"dx": "far"})])
    if mode == "dangling-mask":
        return completion([call("remove", {"mask": "previous"})])
    if mode == "last-mask":
        return completion([call("remove", {"mask": "last"})])
    if mode == "edit-no-image":
        return completion([call("undo", {})])
    if mode == "not-a-completion":
        return {"hello": "world"}
    if mode == "http500":
        return JSONResponse({"error": {"message": "boom"}}, status_code=500)
    if mode == "slow":
        await asyncio.sleep(5)
        return completion([call("undo", {})])
    return JSONResponse({"error": {"message": f"unknown mode {mode}"}}, status_code=400)
