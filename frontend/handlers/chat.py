"""Chat handlers (streamed turns about the head image)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

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
    on_version,
)
from frontend.handlers.session import SessionHandlers
from frontend.handlers.state import HeadView, UiState
from lvi.contracts.gateway import (
    Action,
    ChatDelta,
    ChatReply,
    PlanReply,
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
        turn = on_version(message, state.head)  # which version the turn is about
        history = [*(history or []), {"role": "user", "content": turn}]
        reply = ""
        done: list[str] = []  # what the chat did, one line per step (act)
        yield [*history, {"role": "assistant", "content": "…"}]
        try:
            async for item in self.gateway(state).chat_stream(
                state.session_id,
                message,
                temperature=float(params.temperature),
                top_p=float(params.top_p),
                max_tokens=int(params.max_tokens),
                **self._act_args(state, params),
            ):
                if isinstance(item, ChatDelta):
                    reply += item.content
                    yield [*history, {"role": "assistant", "content": _with_actions(done, reply)}]
                elif isinstance(item, Action):
                    done.append(_action_line(item))
                    yield [*history, {"role": "assistant", "content": _with_actions(done, "…")}]
                elif isinstance(item, PlanReply) and item.clarification:
                    reply = item.clarification
                elif isinstance(item, ChatReply):
                    reply = item.reply.content
                    reply = _with_actions(done, reply)
        except (APIError, ValidationError) as exc:
            # A warning toast, not gr.Error: Gradio blanks a chatbot whose event failed, and
            # the conversation must stay on screen. The failure is also noted in the chat.
            title, text = describe_error(exc)
            gr.Warning(text, title=title)
            note = f"{reply}\n\n" if reply else ""
            yield [*history, {"role": "assistant", "content": f"{note}⚠️ {text}"}]
            return
        yield [*history, {"role": "assistant", "content": reply}]

    async def refresh_if_moved(self, state: UiState) -> tuple[UiState, HeadView] | None:
        """After a turn: the new head when the chat's edits (or undo) moved it, else None (a
        question leaves the image, the clicks and the selected object as they are)."""
        if not state.session_id:
            return None
        with user_errors():
            session = await self.gateway(state).get_session(state.session_id)
        if session.head == state.head:
            return None
        return await self.refresh(state)

    @staticmethod
    def _act_args(state: UiState, params: ChatParams) -> dict[str, Any]:
        """With the toggle on: ``act``, the head the edits start from, and the clicks on the
        image (they go with the message: "remove this")."""
        if not params.act:
            return {}
        args: dict[str, Any] = {"act": True}
        if state.points:
            args["points"] = [list(p) for p in state.points]
            args["labels"] = list(state.labels)
        return args

    async def clear_chat(self, state: UiState) -> ChatHistory:
        """Forget the conversation in the gateway too (images and versions stay)."""
        if state.session_id:
            with user_errors():
                await self.gateway(state).clear_messages(state.session_id)
        return []


def _action_line(action: Action) -> str:
    """One step the chat ran, as a short line ("✅ Removed it (version 5)")."""
    mark = {"done": "✅", "failed": "❌", "skipped": "⏭️"}.get(action.status, "•")
    text = action.summary or action.tool
    if action.status == "failed" and action.error is not None:
        text += f": {action.error.error.message}"
    return f"{mark} {text}"


def _with_actions(done: list[str], reply: str) -> str:
    """The reply with the list of steps done above it (as the original's chat never could)."""
    if not done:
        return reply
    return "\n".join(f"- {line}" for line in done) + "\n\n" + reply
