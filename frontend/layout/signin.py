"""The sign-in panel (shown instead of the app until a visitor signs in) and the user bar."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr


@dataclass
class SignInPanel:
    """Username and password, or an API key; ``message`` says why the panel shows."""

    panel: gr.Column
    message: gr.Markdown
    username: gr.Textbox
    password: gr.Textbox
    password_button: gr.Button
    api_key: gr.Textbox
    key_button: gr.Button


@dataclass
class UserBar:
    """Who this tab acts as, and sign-out."""

    who: gr.Markdown
    sign_out: gr.Button


def build_signin_panel(visible: bool) -> SignInPanel:
    with gr.Column(visible=visible, elem_id="signin") as panel:
        gr.Markdown("## Sign in")
        message = gr.Markdown(elem_id="signin-message")
        with gr.Tabs():
            with gr.Tab("Username and password", id="signin-password-tab"):
                username = gr.Textbox(
                    label="Username", max_lines=1, autofocus=True, elem_id="signin-username"
                )
                password = gr.Textbox(
                    label="Password", type="password", max_lines=1, elem_id="signin-password"
                )
                password_button = gr.Button("Sign in", variant="primary", elem_id="signin-btn")
            with gr.Tab("API key", id="signin-key-tab", elem_id="signin-key-tab"):
                api_key = gr.Textbox(
                    label="Your API key",
                    type="password",
                    max_lines=1,
                    info="Exchanged for a sign-in token; the browser does not keep the key.",
                    elem_id="signin-key",
                )
                key_button = gr.Button(
                    "Sign in with key", variant="primary", elem_id="signin-key-btn"
                )
    return SignInPanel(panel, message, username, password, password_button, api_key, key_button)


def build_user_bar(sign_in: bool) -> UserBar:
    with gr.Row(equal_height=True):
        who = gr.Markdown(elem_id="user-bar")
        sign_out = gr.Button(
            "Sign out", size="sm", scale=0, min_width=100, visible=sign_in, elem_id="signout-btn"
        )
    return UserBar(who, sign_out)
