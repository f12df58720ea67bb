"""The UI's event wiring, one function per workflow group, over a built :class:`~frontend.layout.Page`.

The handlers here only adapt Gradio values to :class:`~frontend.handlers.Controller` calls
and its view objects to component updates (:class:`Views`); the logic is in
``frontend.handlers``. Every public event keeps its ``api_name`` (``gradio_client`` callers
use them).
"""

from __future__ import annotations

import gradio as gr

from frontend.events.brush import wire_brush
from frontend.events.chat import wire_chat
from frontend.events.edits import Edit, edit_handler, edits, progress_callback, wire_edits
from frontend.events.library import wire_library
from frontend.events.objects import wire_objects
from frontend.events.prompts import wire_prompts
from frontend.events.segment import wire_segment
from frontend.events.session import wire_history, wire_remember, wire_session
from frontend.events.signin import wire_signin
from frontend.events.views import Views
from frontend.handlers import Controller
from frontend.layout import Page


def wire_events(demo: gr.Blocks, page: Page, ctl: Controller, examples: list[str]) -> Views:
    """Wire every event of ``page`` (inside ``demo``'s context)."""
    views = Views(page, ctl)
    wire_session(demo, ctl, views)
    wire_signin(ctl, views)
    wire_history(ctl, views, examples)
    wire_objects(ctl, views, selected=wire_segment(ctl, views))
    wire_edits(ctl, views)
    wire_chat(ctl, views)
    wire_remember(views)
    wire_library(ctl, views)
    wire_prompts(demo, ctl, views)
    wire_brush(demo, ctl, views)
    return views


__all__ = [
    "Edit",
    "Views",
    "edit_handler",
    "edits",
    "progress_callback",
    "wire_brush",
    "wire_chat",
    "wire_edits",
    "wire_events",
    "wire_history",
    "wire_objects",
    "wire_prompts",
    "wire_remember",
    "wire_segment",
    "wire_session",
    "wire_signin",
]
