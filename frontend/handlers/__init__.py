"""What the UI does, as plain classes over the gateway SDK (no Gradio layout in here).

:class:`Controller` takes an :class:`~lvi_client.AsyncLviClient` (or anything with the same
methods) and an :class:`ImageFiles` cache, and turns UI input values (annotator boxes,
editor layers, clicks) into gateway calls, and gateway answers into small view objects
(:class:`HeadView`, :class:`MaskView`) that ``frontend.app`` maps onto components.

The handlers are grouped by workflow, one module each (``session``, ``segment``, ``edits``,
``generate``, ``chat``), all built on :class:`SessionHandlers`; :class:`Controller` combines
them. A new workflow (sign-in, instance selection, a chat that acts) is one more module and
one more base class of :class:`Controller`.

Per-browser state lives in :class:`UiState` (a ``gr.State`` value, one per browser tab) and
the gateway session id in the browser's localStorage; nothing here is module-level, so two
users never share anything.

Every failure reaches the user as ``gr.Error`` with the gateway's own message (the error
envelope), never a stack trace.
"""

from __future__ import annotations

from frontend.handlers.brush import BrushHandlers
from frontend.handlers.chat import ChatHandlers
from frontend.handlers.edits import EditHandlers
from frontend.handlers.errors import TINY_BANNER, Gateway, describe_error, fail, user_errors
from frontend.handlers.generate import GenerateHandlers
from frontend.handlers.inputs import (
    DEFAULT_GEN_SIZE,
    ChatParams,
    DiffusionParams,
    annotator_boxes,
    box_xyxy,
    boxes_and_phrases,
    chat_history,
    native_size,
    seed_or_none,
    split_phrases,
    stroke_png_b64,
    version_caption,
)
from frontend.handlers.library import Library, LibraryHandlers
from frontend.handlers.objects import InstancesView, ObjectHandlers
from frontend.handlers.preview import PreviewHandlers, RemovePreview
from frontend.handlers.prompts import PromptHandlers
from frontend.handlers.segment import SegmentHandlers
from frontend.handlers.session import SessionHandlers
from frontend.handlers.signin import Entry, SignInHandlers
from frontend.handlers.state import HeadView, ImageFiles, Loaded, MaskView, UiState, browser_value


class Controller(
    BrushHandlers,
    ObjectHandlers,
    PreviewHandlers,
    EditHandlers,
    GenerateHandlers,
    ChatHandlers,
    LibraryHandlers,
    SignInHandlers,
    PromptHandlers,
):
    """Every UI action, as calls to the gateway: the workflow groups combined."""


__all__ = [
    "DEFAULT_GEN_SIZE",
    "TINY_BANNER",
    "BrushHandlers",
    "ChatHandlers",
    "ChatParams",
    "Controller",
    "DiffusionParams",
    "EditHandlers",
    "Entry",
    "Gateway",
    "GenerateHandlers",
    "HeadView",
    "ImageFiles",
    "InstancesView",
    "Library",
    "LibraryHandlers",
    "Loaded",
    "MaskView",
    "ObjectHandlers",
    "PreviewHandlers",
    "PromptHandlers",
    "RemovePreview",
    "SegmentHandlers",
    "SessionHandlers",
    "SignInHandlers",
    "UiState",
    "annotator_boxes",
    "box_xyxy",
    "boxes_and_phrases",
    "browser_value",
    "chat_history",
    "describe_error",
    "fail",
    "native_size",
    "seed_or_none",
    "split_phrases",
    "stroke_png_b64",
    "user_errors",
    "version_caption",
]
