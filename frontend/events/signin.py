"""Events of sign-in and sign-out (and the visitor's address, for the gateway's throttles)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from frontend.events.views import Views
from frontend.handlers import Controller, UiState

SIGNED_OUT_BROWSER = {"session_id": None, "token": None}
# After sign-out the page reloads, so nothing of the previous user stays on it; the short
# wait lets the cleared browser storage be written first.
RELOAD = "() => { setTimeout(() => window.location.reload(), 400); }"


def client_address(request: gr.Request | None) -> str | None:
    """The visitor's address as this server sees it."""
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    return str(host) if host else None


def wire_signin(ctl: Controller, views: Views) -> None:
    """Sign in by password or API key (both clear the secret field), and sign out."""
    page = views.page
    form = page.signin

    async def on_password(
        stored: dict[str, Any] | None,
        username: str | None,
        password: str | None,
        request: gr.Request,
    ) -> tuple[Any, ...]:
        entry = await ctl.sign_in_password(stored, username, password, client_address(request))
        return (*views.entry(entry), "")

    async def on_key(
        stored: dict[str, Any] | None, api_key: str | None, request: gr.Request
    ) -> tuple[Any, ...]:
        entry = await ctl.sign_in_key(stored, api_key, client_address(request))
        return (*views.entry(entry), "")

    async def on_sign_out(st: UiState) -> tuple[Any, ...]:
        return await ctl.sign_out(st), SIGNED_OUT_BROWSER

    password_in = [page.browser, form.username, form.password]
    password_out = [*views.entry_outputs, form.password]
    # Progress and errors show on the panel's message only: over the whole panel, Gradio's
    # status overlay would cover the form after a failed try.
    shown = [form.message]
    form.password_button.click(
        on_password, password_in, password_out, api_name="sign_in", show_progress_on=shown
    )
    form.password.submit(
        on_password, password_in, password_out, api_visibility="private", show_progress_on=shown
    )
    key_in = [page.browser, form.api_key]
    key_out = [*views.entry_outputs, form.api_key]
    form.key_button.click(on_key, key_in, key_out, api_name="sign_in_key", show_progress_on=shown)
    form.api_key.submit(on_key, key_in, key_out, api_visibility="private", show_progress_on=shown)
    page.user.sign_out.click(
        on_sign_out, [page.state], [page.state, page.browser], api_name="sign_out"
    ).then(None, js=RELOAD)
