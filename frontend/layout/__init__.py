"""The UI's layout: one small builder per panel, each returning a dataclass of its components.

``build_page`` puts them together (the image on the left with its history strip and the
editing tabs under it, the chat on the right, as in the original LLaVA-Interactive); the
event wiring in ``frontend.events`` reads components from the :class:`Page` it returns.
Every component the browser tests select has a fixed ``elem_id``.
"""

from __future__ import annotations

from frontend.layout.chat import ChatPanel, build_chat_panel
from frontend.layout.image import ImagePanel, build_image_panel
from frontend.layout.page import TITLE, Page, build_page
from frontend.layout.tabs import (
    AdvancedOptions,
    EditTab,
    GenerateTab,
    InpaintTab,
    build_advanced_options,
    build_edit_tab,
    build_generate_tab,
    build_inpaint_tab,
)

__all__ = [
    "TITLE",
    "AdvancedOptions",
    "ChatPanel",
    "EditTab",
    "GenerateTab",
    "ImagePanel",
    "InpaintTab",
    "Page",
    "build_advanced_options",
    "build_chat_panel",
    "build_edit_tab",
    "build_generate_tab",
    "build_image_panel",
    "build_inpaint_tab",
    "build_page",
]
