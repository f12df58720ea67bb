"""Text-to-image handlers (caption, boxes and phrases on a canvas)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from frontend.handlers.errors import (
    Progress,
    _no_progress,
    fail,
)
from frontend.handlers.inputs import (
    DiffusionParams,
    annotator_boxes,
    box_xyxy,
    boxes_and_phrases,
    warn_unused_phrases,
)
from frontend.handlers.session import SessionHandlers
from frontend.handlers.state import HeadView, UiState


class GenerateHandlers(SessionHandlers):
    """A new image from a caption, optionally grounded by boxes."""

    async def generate(
        self,
        state: UiState,
        prompt: str | None,
        box_value: dict[str, Any] | None,
        phrases_text: str | None,
        width: int,
        height: int,
        beta: float,
        params: DiffusionParams,
        progress: Progress = _no_progress,
    ) -> tuple[UiState, HeadView]:
        """A new image from a caption, optionally with boxes and phrases on the canvas."""
        prompt = (prompt or "").strip()
        if not prompt:
            raise fail("Describe the image to generate.")
        state = await self.ensure_session(state)
        assert state.session_id
        boxes, phrases = boxes_and_phrases(box_value, phrases_text)
        warn_unused_phrases(box_value, phrases_text)
        boxes = self._scale_boxes(box_value, boxes, int(width), int(height))
        return await self._apply(
            state,
            self.gateway(state).generate(
                state.session_id,
                prompt,
                boxes=boxes,
                phrases=phrases,
                width=int(width),
                height=int(height),
                scheduled_sampling_beta=float(beta),
                on_progress=progress,
                **params.kwargs(),
            ),
        )

    @staticmethod
    def _scale_boxes(
        value: dict[str, Any] | None, boxes: list[list[float]], width: int, height: int
    ) -> list[list[float]]:
        """Boxes drawn on a canvas of another size are scaled to the output size."""
        if not boxes or not value or value.get("image") is None:
            return boxes
        image = value["image"]
        if isinstance(image, np.ndarray):
            ch, cw = image.shape[:2]
        elif isinstance(image, Image.Image):
            cw, ch = image.size
        else:
            try:
                with Image.open(str(image)) as im:
                    cw, ch = im.size
            except OSError:
                return boxes
        sx, sy = width / cw, height / ch
        return [[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy] for b in boxes]

    def canvas(self, width: int, height: int, value: dict[str, Any] | None) -> dict[str, Any]:
        """A white canvas of the output size, with the boxes drawn so far scaled onto it."""
        width, height = int(width), int(height)
        path = str(self.files.blank(width, height))
        boxes = annotator_boxes(value)
        if boxes and value and value.get("image") is not None:
            scaled = self._scale_boxes(value, [box_xyxy(b) for b in boxes], width, height)
            boxes = [
                {
                    "xmin": round(s[0]),
                    "ymin": round(s[1]),
                    "xmax": round(s[2]),
                    "ymax": round(s[3]),
                    "label": b.get("label") or "",
                }
                for s, b in zip(scaled, boxes, strict=True)
            ]
        return {"image": path, "boxes": boxes}
