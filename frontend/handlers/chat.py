"""Chat handlers (streamed turns about the head image)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import gradio as gr
from pydantic import ValidationError

from frontend.handlers.errors import (
    ChatHistory,
    describe_error,
    fail,
    user_errors,
)
from frontend.handlers.inputs import (
    ChatParams,
)
from frontend.handlers.session import SessionHandlers
from frontend.handlers.state import UiState
from lvi.contracts.gateway import (
    ChatDelta,
    ChatReply,
)
from lvi_client import (
    APIError,
)


class ChatHandlers(SessionHandlers):
    """One streamed chat turn at a time; clearing the conversation."""

    # chat
    async def chat(
        self,
        state: UiState,
        message: str | None,
        history: ChatHistory | None,
        params: ChatParams,
    ) -> AsyncIterator[ChatHistory]:
        """Stream one turn about the head image: yields the history as the reply grows."""
        message = (message or "").strip()
        if not message:
            raise fail("Type a message first.")
        state = await self.ensure_session(state)
        assert state.session_id
        history = [*(history or []), {"role": "user", "content": message}]
        reply = ""
        yield [*history, {"role": "assistant", "content": "…"}]
        try:
            async for item in self.client.chat_stream(
                state.session_id,
                message,
                temperature=float(params.temperature),
                top_p=float(params.top_p),
                max_tokens=int(params.max_tokens),
            ):
                if isinstance(item, ChatDelta):
                    reply += item.content
                    yield [*history, {"role": "assistant", "content": reply}]
                elif isinstance(item, ChatReply):
                    reply = item.reply.content
        except (APIError, ValidationError) as exc:
            # A warning toast, not gr.Error: Gradio blanks a chatbot whose event failed, and
            # the conversation must stay on screen. The failure is also noted in the chat.
            title, text = describe_error(exc)
            gr.Warning(text, title=title)
            note = f"{reply}\n\n" if reply else ""
            yield [*history, {"role": "assistant", "content": f"{note}⚠️ {text}"}]
            return
        yield [*history, {"role": "assistant", "content": reply}]

    async def clear_chat(self, state: UiState) -> ChatHistory:
        """Forget the conversation in the gateway too (images and versions stay)."""
        if state.session_id:
            with user_errors():
                await self.client.clear_messages(state.session_id)
        return []
