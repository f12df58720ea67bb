"""The whole page: title, banner, the image column (panel, tabs, options), the chat column,
and the per-browser state."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from frontend.handlers import UiState
from frontend.layout import tabs
from frontend.layout.chat import ChatPanel, build_chat_panel
from frontend.layout.image import ImagePanel, build_image_panel
from frontend.layout.library import LibraryPanel, build_library_panel
from frontend.layout.signin import SignInPanel, UserBar, build_signin_panel, build_user_bar

TITLE = "LLaVA-Interactive"


@dataclass
class Page:
    """Every component the events read or write, grouped by panel."""

    browser: gr.BrowserState  # the gateway session id, kept in this browser's localStorage
    state: gr.State  # this tab's UiState
    banner: gr.Markdown
    image: ImagePanel
    edit: tabs.EditTab
    inpaint: tabs.InpaintTab
    generate: tabs.GenerateTab
    advanced: tabs.AdvancedOptions
    jobs: tabs.JobBar
    chat: ChatPanel
    library: LibraryPanel
    signin: SignInPanel
    user: UserBar
    app: gr.Column  # everything a signed-in user sees (hidden until sign-in)


def build_page(examples: list[str], storage_secret: str, sign_in: bool = False) -> Page:
    """Inside the current Blocks context: the layout, top to bottom, left to right."""
    browser = gr.BrowserState(
        {"session_id": None, "token": None}, storage_key="lvi-session", secret=storage_secret
    )
    state = gr.State(UiState())
    gr.Markdown(
        f"# {TITLE}\nChat about an image, segment and edit it, or generate a new one. "
        "Every edit is a new version: undo, redo or click the history to go back.",
        elem_id="title",
    )
    signin = build_signin_panel(visible=sign_in)
    with gr.Column(visible=not sign_in, elem_id="app") as app:
        user = build_user_bar(sign_in)
        banner = gr.Markdown(visible=False, elem_id="tiny-banner")
        library = build_library_panel()
        image, edit, inpaint, generate, jobs, advanced, chat = _build_app(examples)
    return Page(
        browser,
        state,
        banner,
        image,
        edit,
        inpaint,
        generate,
        advanced,
        jobs,
        chat,
        library,
        signin,
        user,
        app,
    )


def _build_app(
    examples: list[str],
) -> tuple[
    ImagePanel,
    tabs.EditTab,
    tabs.InpaintTab,
    tabs.GenerateTab,
    tabs.JobBar,
    tabs.AdvancedOptions,
    ChatPanel,
]:
    with gr.Row(equal_height=False):
        with gr.Column(scale=6):  # left: the image, its history, the editing tabs
            image = build_image_panel(examples)
            with gr.Tabs(elem_id="tabs"):
                edit = tabs.build_edit_tab()
                inpaint = tabs.build_inpaint_tab()
                generate = tabs.build_generate_tab()
            jobs = tabs.build_job_bar()
            advanced = tabs.build_advanced_options()
        with gr.Column(scale=4):  # right: the chat
            chat = build_chat_panel()
    return image, edit, inpaint, generate, jobs, advanced, chat
