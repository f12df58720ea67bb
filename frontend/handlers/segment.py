"""Segmentation handlers (boxes, clicks, masks)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from frontend.handlers.errors import (
    fail,
    user_errors,
)
from frontend.handlers.inputs import (
    annotator_boxes,
    box_xyxy,
    stroke_png_b64,
)
from frontend.handlers.session import SessionHandlers
from frontend.handlers.state import MaskView, UiState
from lvi.contracts.gateway import (
    MaskInfo,
    SegmentResult,
)

DISPLAY_MAX = 1600
"""Longest side of the selected-object view (the image with its mask drawn on top)."""


class SegmentHandlers(SessionHandlers):
    """Segment by box or click; the mask shown over the head image."""

    async def segment(
        self,
        state: UiState,
        *,
        box_value: dict[str, Any] | None = None,
        editor_value: dict[str, Any] | None = None,
        text: str | None = None,
    ) -> tuple[UiState, MaskView]:
        """Segment the head with every prompt given at once (SAM-style): the clicked points
        in ``state``, the boxes drawn, the brush strokes, and the referring text."""
        self._need_image(state)
        assert state.session_id
        boxes = [box_xyxy(b) for b in annotator_boxes(box_value)]
        stroke = stroke_png_b64(editor_value, state.width, state.height)
        text = (text or "").strip() or None
        if not (state.points or boxes or stroke or text):
            raise fail(
                "Give the segmenter a prompt: draw a box, click the object, paint over it "
                "with the brush, or type what it is."
            )
        with user_errors():
            info = await self.gateway(state).segment(
                state.session_id,
                points=state.points or None,
                labels=state.labels or None,
                boxes=boxes or None,
                stroke=stroke,
                text=text,
                merge=False,  # one mask per object: the user picks among them
            )
        return await self._select(state, info)

    async def _select(self, state: UiState, info: SegmentResult) -> tuple[UiState, MaskView]:
        """Show the segmentation's best mask as the selected object."""
        assert state.session_id
        with user_errors():
            png = await self.gateway(state).get_mask(state.session_id, info.mask_id)
        state = replace(state, mask=info.model_dump(mode="json", exclude={"instances"}))
        return state, self._mask_view(state, info, png)

    async def click(
        self,
        state: UiState,
        xy: Sequence[float],
        include: bool,
        *,
        box_value: dict[str, Any] | None = None,
        editor_value: dict[str, Any] | None = None,
        text: str | None = None,
    ) -> tuple[UiState, MaskView]:
        """A click on the image adds a positive or negative point, then segments again."""
        self._need_image(state)
        x, y = float(xy[0]), float(xy[1])
        state = replace(
            state, points=[*state.points, [x, y]], labels=[*state.labels, 1 if include else 0]
        )
        return await self.segment(state, box_value=box_value, editor_value=editor_value, text=text)

    def clear_prompts(self, state: UiState) -> UiState:
        return replace(state, points=[], labels=[], mask=None, prompt_kind=None)

    def _mask_view(self, state: UiState, info: MaskInfo, png: bytes) -> MaskView:
        # Shown at most DISPLAY_MAX pixels wide or high: a 12 MP photo with a full-size mask
        # overlay took seconds to encode and send (the mask itself stays full size).
        scale = min(1.0, DISPLAY_MAX / max(state.width, state.height, 1))
        size = (max(1, round(state.width * scale)), max(1, round(state.height * scale)))
        with Image.open(io.BytesIO(png)) as im:
            shown = im.convert("L")
            if shown.size != size:
                shown = shown.resize(size, Image.Resampling.NEAREST)
        mask = np.asarray(shown) > 0
        assert state.head_path
        image = state.head_path
        if scale < 1.0:
            image = str(self.files.scaled(Path(state.head_path), size))
        label = info.label or "object"
        annotations: list[tuple[np.ndarray | tuple[int, int, int, int], str]] = [
            (mask.astype(np.float32), label)
        ]
        r = max(3, round(min(size) / 80))
        for (x, y), lab in zip(state.points, state.labels, strict=False):
            x, y = x * scale, y * scale
            box = (round(x) - r, round(y) - r, round(x) + r, round(y) + r)
            annotations.append((box, "include" if lab else "exclude"))
        parts = [f"**{label}**"]
        if info.score is not None:
            parts.append(f"score {info.score:.2f}")
        if info.area is not None:
            parts.append(f"{info.area} px")
        if info.bbox:
            parts.append("box " + ", ".join(str(v) for v in info.bbox))
        return MaskView(image, annotations, " · ".join(parts), info.bbox, label)

    def move_box(self, state: UiState) -> dict[str, Any] | None:
        """The move annotator's value: the head with the selected object's box, to drag."""
        if state.head_path is None:
            return None
        mask = state.mask
        boxes = []
        if mask and mask.get("bbox"):
            x0, y0, x1, y1 = mask["bbox"]
            boxes.append(
                {
                    "xmin": x0,
                    "ymin": y0,
                    "xmax": x1,
                    "ymax": y1,
                    "label": mask.get("label") or "object",
                }
            )
        return {"image": state.head_path, "boxes": boxes}
