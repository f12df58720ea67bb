"""Segmentation prompts one kind at a time, and the clicks drawn where the user clicked.

The Edit tab takes four kinds of prompt (clicks, boxes, brush strokes, a referring text).
Left on screen, an old kind silently merged with the next one (three clicks, then a box,
segmented all four); now starting a kind clears the others (:meth:`PromptHandlers.start_prompt`).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from typing import Literal

from PIL import Image, ImageDraw

from frontend.handlers.session import SessionHandlers
from frontend.handlers.state import UiState

PromptKind = Literal["click", "box", "stroke", "text"]
PROMPT_KINDS: tuple[PromptKind, ...] = ("click", "box", "stroke", "text")
MARKER_COLORS = {1: (22, 163, 74), 0: (220, 38, 38)}  # include green, exclude red


class PromptHandlers(SessionHandlers):
    """Which prompt kind is in use, and the click view with its markers."""

    def start_prompt(self, state: UiState, kind: PromptKind) -> tuple[UiState, frozenset[str]]:
        """The user started giving a ``kind`` prompt. When the last kind used on this head was
        another one, every other kind is cleared: the clicks in the state here, the inputs
        (boxes, strokes, text) by the caller, from the kinds returned."""
        if kind not in PROMPT_KINDS:
            raise ValueError(f"unknown prompt kind {kind!r}")
        previous = state.prompt_kind
        if previous == kind:
            return state, frozenset()
        state = replace(state, prompt_kind=kind)
        if previous is None and not state.points:
            return state, frozenset()  # nothing was given on this head yet
        cleared = frozenset(k for k in PROMPT_KINDS if k != kind)
        if "click" in cleared:
            state = replace(state, points=[], labels=[])
        return state, cleared

    def click_view(self, state: UiState) -> str | None:
        """The image the user clicks on: the head with a marker on each click (green for
        include, red for exclude), at the head's size so click coordinates stay pixels."""
        if state.head_path is None or not state.points:
            return state.head_path
        key = hashlib.sha256(
            f"{state.head_path}|{state.points}|{state.labels}".encode()
        ).hexdigest()[:32]
        path = self.files.known(f"clicks-{key}")
        if path is not None:
            return str(path)
        with Image.open(state.head_path) as im:
            image = im.convert("RGB")
        draw = ImageDraw.Draw(image)
        # Big enough to see once the view is scaled down to the panel's width.
        r = max(6, round(min(image.size) / 35))
        for (x, y), label in zip(state.points, state.labels, strict=False):
            box = (x - r, y - r, x + r, y + r)
            fill = MARKER_COLORS[1 if label else 0]
            draw.ellipse(box, fill=fill, outline="white", width=max(2, r // 4))
        buf = io.BytesIO()
        # JPEG: a 12 MP head is encoded in a fraction of a second, and the view is only a guide.
        image.save(buf, format="JPEG", quality=90)
        return str(self.files.write(f"clicks-{key}", buf.getvalue(), ".jpg"))
