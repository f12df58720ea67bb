"""Chat services: the OpenAI contract on top of a backend, under the worker's admission control.

:class:`LocalChat` runs the transformers backend in the worker's inference threads;
:class:`UpstreamChat` forwards to an OpenAI-compatible server. Both check requests the same
way and hand the routes either a JSON body or a :class:`StreamHandle` of SSE payloads, so
the routes stay thin and the two backends pass the same client tests.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from lvi.contracts.llava import (
    TRUNCATED_HEADER,
    AssistantMessage,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    Usage,
    completion_id,
)
from lvi.worker import Deadline, WorkerRuntime
from services.llava.backend import ChatResult, LlavaBackend, PromptInfo
from services.llava.conversation import OMITTED_IMAGE_NOTE, ParsedChat, parse_request
from services.llava.upstream import OpenAIUpstream


@dataclass
class StreamHandle:
    """An open stream: headers to send first, then SSE ``data`` payloads (JSON text).

    ``close`` must be awaited when the client is done or gone: it stops the generation (or
    the upstream call) and frees the inference slot.
    """

    headers: dict[str, str]
    data: AsyncIterator[str]
    close: Callable[[], Awaitable[None]]


class ChatService(Protocol):
    """What the routes need from a chat backend."""

    def models(self) -> ModelList: ...

    def parse(self, req: ChatCompletionRequest) -> ParsedChat: ...

    async def complete(
        self,
        chat: ParsedChat,
        deadline: Deadline,
        disconnected: Callable[[], Awaitable[bool]] | None = None,
    ) -> tuple[dict[str, Any], dict[str, str]]: ...

    async def stream(self, chat: ParsedChat, deadline: Deadline) -> StreamHandle: ...


def _usage(prompt: int, completion: int) -> Usage:
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


class LocalChat:
    """The transformers backend, one generation per inference slot."""

    def __init__(self, runtime: WorkerRuntime, backend: LlavaBackend) -> None:
        self.rt = runtime
        self.backend = backend

    def models(self) -> ModelList:
        return ModelList(data=[ModelCard(id=self.backend.model_id)])

    def parse(self, req: ChatCompletionRequest) -> ParsedChat:
        self.rt.require_ready()  # the checks need the model's context length
        return self.backend.parse(req)

    async def complete(
        self,
        chat: ParsedChat,
        deadline: Deadline,
        disconnected: Callable[[], Awaitable[bool]] | None = None,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        result: ChatResult = await self.rt.run(
            self.backend.generate, chat, deadline=deadline, disconnected=disconnected
        )
        body = ChatCompletionResponse(
            model=self.backend.model_id,
            choices=[
                Choice(
                    message=AssistantMessage(content=result.text),
                    finish_reason=result.finish_reason,  # type: ignore[arg-type]
                )
            ],
            usage=_usage(result.prompt_tokens, result.completion_tokens),
        )
        return body.model_dump(mode="json"), {TRUNCATED_HEADER: str(result.truncated_turns)}

    async def stream(self, chat: ParsedChat, deadline: Deadline) -> StreamHandle:
        events = self.rt.stream(self.backend.generate, chat, deadline=deadline)
        # The first event (the prompt's facts) arrives before any token: admission errors,
        # bad images and over-long prompts surface here, as plain HTTP errors, and the
        # truncation header can still be sent.
        first = await anext(events)
        meta = first[1] if first[0] == "meta" else PromptInfo(0, 0, 0)
        cid, created, model = completion_id(), int(time.time()), self.backend.model_id

        def chunk(
            delta: Delta | None, finish: str | None = None, usage: Usage | None = None
        ) -> str:
            choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)]  # type: ignore[arg-type]
            return ChatCompletionChunk(
                id=cid, created=created, model=model, choices=choices, usage=usage
            ).model_dump_json()

        async def data() -> AsyncIterator[str]:
            yield chunk(Delta(role="assistant", content=""))
            async for kind, value in events:
                if kind == "delta":
                    yield chunk(Delta(content=value))
                elif kind == "result":
                    yield chunk(Delta(), finish=value.finish_reason)
                    if chat.include_usage:
                        yield chunk(
                            None, usage=_usage(value.prompt_tokens, value.completion_tokens)
                        )

        return StreamHandle(
            headers={TRUNCATED_HEADER: str(meta.truncated_turns)},
            data=data(),
            close=events.aclose,  # type: ignore[attr-defined]
        )


def drop_older_images(messages: list[dict[str, Any]]) -> None:
    """LLAVA_IMAGE_POLICY=latest for an upstream: every image part but the last becomes the
    same text note the transformers backend uses. The gateway sends whole histories whose turns
    carry successive versions of the image; vLLM serves LLaVA-1.5 with one image per prompt
    (``--limit-mm-per-prompt``), and each image would cost 576 tokens of its context."""
    parts = [
        (m, i)
        for m in messages
        if isinstance(m.get("content"), list)
        for i, p in enumerate(m["content"])
        if p.get("type") == "image_url"
    ]
    for m, i in parts[:-1]:
        m["content"][i] = {"type": "text", "text": OMITTED_IMAGE_NOTE}


class UpstreamChat:
    """Forward to an OpenAI-compatible server, under this worker's admission control."""

    def __init__(self, runtime: WorkerRuntime, upstream: OpenAIUpstream) -> None:
        self.rt = runtime
        self.upstream = upstream

    def models(self) -> ModelList:
        return ModelList(data=[ModelCard(id=self.upstream.model_id)])

    def parse(self, req: ChatCompletionRequest) -> ParsedChat:
        self.rt.require_ready()
        s = self.upstream.settings
        return parse_request(
            req,
            default_max_tokens=s.default_max_tokens,
            max_images=s.max_images,
            allow_remote=s.allow_remote_images,
        )

    def _payload(self, chat: ParsedChat) -> dict[str, Any]:
        payload = chat.request.model_dump(mode="json", exclude_none=True)
        payload.pop("max_completion_tokens", None)
        payload["max_tokens"] = chat.max_tokens
        if self.upstream.settings.image_policy == "latest":
            drop_older_images(payload["messages"])
        return payload

    async def complete(
        self,
        chat: ParsedChat,
        deadline: Deadline,
        disconnected: Callable[[], Awaitable[bool]] | None = None,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        async with self.rt.slot(deadline):
            return await self.upstream.complete(self._payload(chat), deadline.remaining())

    async def stream(self, chat: ParsedChat, deadline: Deadline) -> StreamHandle:
        # The slot outlives this call: the stream's close() frees it.
        slot = await self.rt.slot(deadline).acquire()
        try:
            response, headers = await self.upstream.open_stream(
                self._payload(chat), deadline.remaining()
            )
        except BaseException:
            slot.release()
            raise

        async def close() -> None:
            slot.release()  # first, synchronously: a cancelled caller may not get past an await
            await response.aclose()

        return StreamHandle(headers=headers, data=self.upstream.events(response), close=close)
