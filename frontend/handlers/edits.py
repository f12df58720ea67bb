"""Edit handlers: remove, move, replace, inpaint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from frontend.handlers.errors import (
    Progress,
    _no_progress,
    fail,
)
from frontend.handlers.inputs import (
    DiffusionParams,
    annotator_boxes,
    boxes_and_phrases,
    warn_unused_phrases,
)
from frontend.handlers.instances import mask_ref
from frontend.handlers.session import SessionHandlers
from frontend.handlers.state import HeadView, UiState


class EditHandlers(SessionHandlers):
    """Edits of the head image; each answers with the new head's view."""

    async def _edit(
        self,
        state: UiState,
        call: Callable[..., Awaitable[object]],
        *args: Any,
        progress: Progress,
        **kw: Any,
    ) -> tuple[UiState, HeadView]:
        """One edit of the head: ``call(session_id, *args, **kw)`` under If-Match on the head
        this tab shows (a stale tab gets 409, not a silent overwrite), with progress."""
        assert state.session_id
        return await self._apply(
            state,
            call(state.session_id, *args, if_match=state.head, on_progress=progress, **kw),
        )

    async def remove(
        self, state: UiState, dilate: int, progress: Progress = _no_progress
    ) -> tuple[UiState, HeadView]:
        mask = self._need_object(state)
        return await self._edit(
            state,
            self.gateway(state).remove,
            mask_ref(mask),
            dilate=int(dilate),
            progress=progress,
        )

    async def move(
        self,
        state: UiState,
        box_value: dict[str, Any] | None,
        phrase: str | None,
        dilate: int,
        params: DiffusionParams,
        progress: Progress = _no_progress,
    ) -> tuple[UiState, HeadView]:
        """Move the object to where its box was dragged: its own pixels, or regenerated
        from ``phrase`` (GLIGEN) when one is given."""
        mask = self._need_object(state)
        boxes = annotator_boxes(box_value)
        if not boxes or not mask.get("bbox"):
            raise fail("Drag the object's box to where the object should go.")
        x0, y0 = mask["bbox"][0], mask["bbox"][1]
        dx, dy = round(boxes[0]["xmin"] - x0), round(boxes[0]["ymin"] - y0)
        phrase = (phrase or "").strip() or None
        if dx == 0 and dy == 0 and phrase is None:
            raise fail("Drag the object's box to where the object should go.")
        return await self._edit(
            state,
            self.gateway(state).move,
            mask_ref(mask),
            dx,
            dy,
            phrase=phrase,
            dilate=int(dilate),
            progress=progress,
            **params.kwargs(),
        )

    async def replace_object(
        self,
        state: UiState,
        phrase: str | None,
        use_mask: bool,
        params: DiffusionParams,
        progress: Progress = _no_progress,
    ) -> tuple[UiState, HeadView]:
        mask = self._need_object(state)
        phrase = (phrase or "").strip()
        if not phrase:
            raise fail("Type what the object should become, e.g. 'a green apple'.")
        return await self._edit(
            state,
            self.gateway(state).replace,
            mask_ref(mask),
            phrase,
            use_mask=bool(use_mask),
            progress=progress,
            **params.kwargs(),
        )

    async def inpaint(
        self,
        state: UiState,
        box_value: dict[str, Any] | None,
        phrases_text: str | None,
        prompt: str | None,
        params: DiffusionParams,
        progress: Progress = _no_progress,
    ) -> tuple[UiState, HeadView]:
        """Add new objects: each drawn box with its phrase."""
        self._need_image(state)
        boxes, phrases = boxes_and_phrases(box_value, phrases_text)
        if not boxes:
            raise fail("Draw a box where each new object should go.")
        warn_unused_phrases(box_value, phrases_text)
        return await self._edit(
            state,
            self.gateway(state).inpaint,
            boxes,
            phrases,
            prompt=(prompt or "").strip() or None,
            progress=progress,
            **params.kwargs(),
        )
