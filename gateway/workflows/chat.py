"""The chat workflow: one turn with LLaVA about the head image, with the session's history."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic import ValidationError

from lvi.contracts import llava
from lvi.contracts.gateway import ChatDelta, ChatReply, ChatRequest, ChatUsage, ProgressEvent
from lvi.errors import Unprocessable

from ..clients import WorkerClients
from ..idempotency import EditContext
from ..presenters import present_message
from ..sessions import MessageRecord, SessionStore
from ..settings import GatewaySettings
from .base import Editor, Event


class ChatService:
    """Chat turns about a session's head image; both messages are stored with the reply."""

    def __init__(
        self,
        store: SessionStore,
        clients: WorkerClients,
        editor: Editor,
        settings: GatewaySettings,
    ) -> None:
        self.store = store
        self.clients = clients
        self.editor = editor
        self.settings = settings

    async def chat(
        self,
        ctx: EditContext,
        req: ChatRequest,
        *,
        told: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[Event]:
        """One turn about the head image, with the session's history.

        Unlike the original demo, the conversation survives an image change: the turn after
        a change starts with a note telling the model which version it now sees. ``told``
        is one more note (chat ``act``: what was just done); ``extra`` fills the reply's
        other fields (``actions``...).
        """
        head = ctx.base
        history = await self.store.messages(ctx.sid, self.settings.chat_history_messages)
        note: str | None = None
        if head is not None and history and history[-1].version != head.id:
            note = f"(The image has changed: it is now version {head.id} after {head.operation}.)"
        if told:
            note = f"{note}\n{told}" if note else told
        messages: list[dict[str, Any]] = []
        for m in history:
            text = f"{m.note}\n{m.content}" if m.note else m.content
            messages.append({"role": m.role, "content": text})
        text = f"{note}\n{req.message}" if note else req.message
        if head is not None:
            image = await self.editor.head_image(ctx)
            content: Any = [
                {"type": "image_url", "image_url": {"url": image.to_data_uri()}},
                {"type": "text", "text": text},
            ]
        else:
            content = text
        messages.append({"role": "user", "content": content})
        try:
            llava_req = llava.ChatCompletionRequest.model_validate(
                {
                    "messages": messages,
                    "temperature": req.temperature,
                    "top_p": req.top_p,
                    "max_tokens": req.max_tokens,
                    "seed": req.seed,
                    "stream": req.stream,
                }
            )
        except ValidationError as e:
            raise Unprocessable(f"Chat request is invalid: {e.errors()[0]['msg']}") from None
        now = time.time()
        user = MessageRecord(
            role="user",
            content=req.message,
            version=head.id if head else None,
            note=note,
            created_at=now,
        )
        reply_text = ""
        usage: ChatUsage | None = None
        finish: str | None = None
        if req.stream:
            parts: list[str] = []
            async for chunk in self.clients.chat_stream(llava_req):
                for choice in chunk.choices:
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                        yield ChatDelta(content=choice.delta.content)
                    if choice.finish_reason:
                        finish = choice.finish_reason
                if chunk.usage is not None:
                    usage = ChatUsage(**chunk.usage.model_dump())
            reply_text = "".join(parts)
        else:
            yield ProgressEvent(stage="chat")
            resp = await self.clients.chat(llava_req)
            reply_text = resp.choices[0].message.content if resp.choices else ""
            finish = resp.choices[0].finish_reason if resp.choices else None
            usage = ChatUsage(**resp.usage.model_dump())
        assistant = MessageRecord(
            role="assistant", content=reply_text, version=user.version, created_at=time.time()
        )
        yield await self.record_turn(
            ctx, user, assistant, usage=usage, finish_reason=finish, **(extra or {})
        )

    async def record_turn(
        self, ctx: EditContext, user: MessageRecord, assistant: MessageRecord, **reply: Any
    ) -> ChatReply:
        """Store a finished turn (both messages, and the reply under the Idempotency-Key's
        claim, atomically) and return the reply; ``reply`` holds ChatReply's other fields."""
        out = ChatReply(reply=present_message(assistant), user=present_message(user), **reply)
        await self.store.append_messages(
            ctx.sid,
            ctx.principal,
            [user, assistant],
            idem=ctx.claim,
            idem_body=json.loads(out.model_dump_json()),
        )
        ctx.claim = None
        return out
