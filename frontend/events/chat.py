"""Chat events: a streamed turn (Enter or Send), stopping it, and clearing the conversation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import gradio as gr

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
        act_v: bool,
    ) -> AsyncIterator[tuple[Any, ...]]:
        params = ChatParams(float(temperature_v), float(top_p_v), int(max_tokens_v), bool(act_v))
        async for updated in ctl.chat(st, message, hist, params):
            yield updated, ""

    async def on_clear_chat(st: UiState) -> list[dict[str, Any]]:
        return await ctl.clear_chat(st)

    async def on_after_chat(st: UiState) -> tuple[Any, ...]:
        # The chat's edits made versions: show the new head (and the history), as any edit does.
        moved = await ctl.refresh_if_moved(st)
        if moved is None:
            return tuple(gr.skip() for _ in views.head_outputs)
        return views.head(*moved)

    inputs = [
        page.state,
        chat.chat_in,
        chat.chatbot,
        chat.temperature,
        chat.top_p,
        chat.max_tokens,
        chat.act,
    ]
    outputs = [chat.chatbot, chat.chat_in]
    submitted = chat.chat_in.submit(
        on_chat, inputs, outputs, api_name="chat", show_progress="hidden"
    )
    sent = chat.send.click(
        on_chat, inputs, outputs, api_visibility="private", show_progress="hidden"
    )
    for turn in (submitted, sent):
        turn.then(on_after_chat, [page.state], views.head_outputs, api_visibility="private")
    # Stop: the reply so far stays on screen; the closed stream cancels LLaVA's generation.
    chat.stop.click(None, cancels=[submitted, sent], api_visibility="private")
    chat.clear.click(on_clear_chat, [page.state], [chat.chatbot], api_name="clear_chat")
