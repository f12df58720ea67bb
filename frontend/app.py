"""The Gradio Blocks app: builds the layout (``frontend.layout``) and wires its events
(``frontend.events``); the logic is in ``frontend.handlers``.

Layout (like the original LLaVA-Interactive): the image on the left with its history strip,
the editing tabs under it, the chat on the right. Unlike the original, every option is
visible (steps, guidance, scheduled sampling, seed; temperature, top-p, max tokens), every
edit makes a new version that undo/redo/checkout can reach, and each browser keeps its own
gateway session across reloads (its id lives in the browser's localStorage).

``create_app(settings, client)`` builds the Blocks; ``create_server`` mounts it on a FastAPI
app (what ``lvi frontend`` serves, readiness: ``GET /`` returns 200).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import gradio as gr

from frontend.events import wire_events
from frontend.examples import example_paths
from frontend.handlers import Controller, Gateway, ImageFiles
from frontend.layout import TITLE, build_page
from frontend.settings import FrontendSettings

CSS = """
#tiny-banner { background: #fff4ce; border: 1px solid #e0b400; border-radius: 6px;
  padding: 4px 12px; }
#head-summary p { margin: 0; }
#library-gallery .caption-label { white-space: normal; max-width: 96%; } /* title, count, time */
/* The history strip is one row that scrolls sideways (it wrapped after 8 versions and hid
   the newest); FOLLOW_HISTORY keeps the newest in view. */
#history .grid-wrap { overflow-x: auto; overflow-y: hidden; }
#history .grid-container { grid-auto-flow: column; grid-template-columns: none;
  grid-template-rows: 1fr; grid-auto-columns: 100px; }
"""
# Runs once per page: whenever the history strip is re-rendered, scroll it to its end (the
# newest version), then to the head's thumbnail if that is an older one.
FOLLOW_HISTORY = """() => {
  const follow = (wrap) => {
    wrap.scrollLeft = wrap.scrollWidth;
    const head = wrap.querySelector('.thumbnail-item.selected');
    if (head) head.scrollIntoView({block: 'nearest', inline: 'nearest'});
  };
  const watch = () => {
    const strip = document.querySelector('#history');
    if (!strip) return setTimeout(watch, 200);
    new MutationObserver(() => {
      const wrap = strip.querySelector('.grid-wrap');
      if (wrap) follow(wrap);
    }).observe(strip, {childList: true, subtree: true});
  };
  watch();
}"""
MAX_UPLOAD = "64mb"


def _gateway_client(settings: FrontendSettings) -> Gateway:
    """The SDK client for ``settings.gateway_url``: with the configured key in single-user
    mode, with none otherwise (each visitor's own credentials are added per call)."""
    from lvi_client import AsyncLviClient

    key = settings.api_key.get_secret_value() if settings.api_key else None
    if settings.auth == "signin":
        key = None
    return AsyncLviClient(settings.gateway_url, api_key=key)


def create_app(
    settings: FrontendSettings | None = None,
    client: Gateway | None = None,
    files: ImageFiles | None = None,
) -> gr.Blocks:
    """Build the UI. ``client`` defaults to an :class:`lvi_client.AsyncLviClient` for
    ``settings.gateway_url``; tests may pass a fake with the same methods."""
    settings = settings or FrontendSettings()
    sign_in = settings.auth == "signin"
    ctl = Controller(
        client or _gateway_client(settings),
        files,
        sign_in=sign_in,
        forward_address=settings.forward_client_address,
    )
    # Stable across restarts, so a reload after a frontend restart still resumes. It only
    # keeps localStorage from being edited by hand: the session id is no secret to its owner.
    storage_secret = hashlib.sha256(f"lvi-frontend|{settings.gateway_url}".encode()).hexdigest()
    examples = [str(p) for p in example_paths()]
    demo = gr.Blocks(title=TITLE, analytics_enabled=False)
    with demo:
        page = build_page(examples, storage_secret[:32], sign_in=sign_in)
        wire_events(demo, page, ctl, examples)
    # I/O-bound handlers (the gateway does admission control): many users at once.
    demo.queue(default_concurrency_limit=32)
    return demo


def create_server(settings: FrontendSettings | None = None, client: Gateway | None = None) -> Any:
    """The Blocks mounted at ``/`` of a FastAPI app (what ``lvi frontend`` serves)."""
    from fastapi import FastAPI

    settings = settings or FrontendSettings()
    gateway = client or _gateway_client(settings)
    demo = create_app(settings, gateway)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        aclose = getattr(gateway, "aclose", None)
        if aclose is not None:
            await aclose()

    app = FastAPI(title=TITLE, lifespan=lifespan, docs_url=None, redoc_url=None)
    return gr.mount_gradio_app(
        app,
        demo,
        path="/",
        css=CSS,
        js=FOLLOW_HISTORY,
        theme=gr.themes.Soft(),
        ssr_mode=False,
        show_error=False,
        # Uploads land on this server before the gateway checks them: refuse absurd sizes
        # early (the gateway's own limits, smaller, still apply and answer readably).
        max_file_size=MAX_UPLOAD,
        footer_links=["api"],
    )
