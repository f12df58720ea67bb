"""Events of the session and its image history: page load, new session, upload, examples,
undo/redo, the history strip, and the API-only checkout/refresh."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import gradio as gr

from frontend.events.signin import client_address
from frontend.events.views import Views
from frontend.handlers import Controller, HeadView, UiState, browser_value

HeadCall = Callable[[UiState], Awaitable[tuple[UiState, HeadView]]]


def _head_event(views: Views, call: HeadCall) -> Callable[[UiState], Awaitable[tuple[Any, ...]]]:
    """A handler of the state alone that shows the head the call leaves."""

    async def handler(st: UiState) -> tuple[Any, ...]:
        return views.head(*await call(st))

    return handler


def wire_session(demo: gr.Blocks, ctl: Controller, views: Views) -> None:
    """Page load (resume this browser's session) and new session."""
    page = views.page

    async def on_load(stored: dict[str, Any] | None, request: gr.Request) -> tuple[Any, ...]:
        return views.entry(await ctl.enter(stored, client_address(request)))

    async def on_new_session(st: UiState) -> tuple[Any, ...]:
        return views.loaded(await ctl.new_session(st))

    demo.load(on_load, [page.browser], views.entry_outputs, api_name="load_session")
    page.image.new_session.click(
        on_new_session, [page.state], views.load_outputs, api_name="new_session"
    )


def wire_history(ctl: Controller, views: Views, examples: list[str]) -> None:
    """Upload, examples, undo/redo, the history strip; checkout by number and refresh for
    API callers (gradio_client) only."""
    page, outputs = views.page, views.head_outputs
    img = page.image

    async def on_upload(st: UiState, path: str | None) -> tuple[Any, ...]:
        return views.head(*await ctl.upload(st, path))

    async def on_example(st: UiState, evt: gr.SelectData) -> tuple[Any, ...]:
        return views.head(*await ctl.upload(st, examples[evt.index]))

    async def on_checkout(st: UiState, version: float) -> tuple[Any, ...]:
        return views.head(*await ctl.checkout(st, int(version)))

    async def on_history(st: UiState, evt: gr.SelectData) -> tuple[Any, ...]:
        return views.head(*await ctl.checkout_index(st, int(evt.index)))

    img.upload.upload(on_upload, [page.state, img.upload], outputs, api_name="upload")
    img.examples.select(on_example, [page.state], outputs, api_visibility="private")
    img.undo.click(_head_event(views, ctl.undo), [page.state], outputs, api_name="undo")
    img.redo.click(_head_event(views, ctl.redo), [page.state], outputs, api_name="redo")
    img.history.select(on_history, [page.state], outputs, api_visibility="private")
    version_in = gr.Number(visible=False, precision=0)
    gr.Button(visible=False).click(
        on_checkout, [page.state, version_in], outputs, api_name="checkout"
    )
    gr.Button(visible=False).click(
        _head_event(views, ctl.refresh), [page.state], outputs, api_name="refresh"
    )


def wire_remember(views: Views) -> None:
    """A session created lazily (an action before the page load finished) is remembered in
    the browser too, so a reload resumes it."""
    page = views.page

    def remember(st: UiState, stored: dict[str, Any] | None) -> Any:
        value = browser_value(st)
        if st.session_id and {k: (stored or {}).get(k) for k in value} != value:
            return value
        return gr.skip()

    page.state.change(
        remember, [page.state, page.browser], [page.browser], api_visibility="private", queue=False
    )
