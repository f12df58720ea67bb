"""Chat events: a streamed turn (Enter or Send), stopping it, and clearing the conversation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from frontend.events.views import Views
from frontend.handlers import ChatParams, Controller, UiState


def wire_chat(ctl: Controller, views: Views) -> None:
    page, chat = views.page, views.page.chat

    async def on_chat(
        st: UiState,
        message: str | None,
        hist: list[dict[str, Any]] | None,
        temperature_v: float,
        top_p_v: float,
        max_tokens_v: float,
    ) -> AsyncIterator[tuple[Any, ...]]:
        params = ChatParams(float(temperature_v), float(top_p_v), int(max_tokens_v))
        async for updated in ctl.chat(st, message, hist, params):
            yield updated, ""

    async def on_clear_chat(st: UiState) -> list[dict[str, Any]]:
        return await ctl.clear_chat(st)

    inputs = [page.state, chat.chat_in, chat.chatbot, chat.temperature, chat.top_p, chat.max_tokens]
    outputs = [chat.chatbot, chat.chat_in]
    submitted = chat.chat_in.submit(
        on_chat, inputs, outputs, api_name="chat", show_progress="hidden"
    )
    sent = chat.send.click(
        on_chat, inputs, outputs, api_visibility="private", show_progress="hidden"
    )
    # Stop: the reply so far stays on screen; the closed stream cancels LLaVA's generation.
    chat.stop.click(None, cancels=[submitted, sent], api_visibility="private")
    chat.clear.click(on_clear_chat, [page.state], [chat.chatbot], api_name="clear_chat")
