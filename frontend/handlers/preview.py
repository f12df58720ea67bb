"""Remove with a preview, as the original LLaVA-Interactive did: the filled background is
shown (and re-filled as the dilation changes) before anything is saved; committing is the
ordinary ``remove`` with the dilation the preview was made with."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import gradio as gr

from frontend.handlers.errors import user_errors
from frontend.handlers.instances import mask_ref
from frontend.handlers.session import HEAD_MOVED, SessionHandlers
from frontend.handlers.state import UiState
from lvi_client import ConflictError

STALE_PREVIEW = (
    "This session changed in another tab or window, so no preview was made: your next edit "
    "shows its latest version."
)


@dataclass
class RemovePreview:
    """A filled image not yet saved: its file, and the dilation it was made with."""

    image: str
    dilate: int
    caption: str


class PreviewHandlers(SessionHandlers):
    """What ``remove`` would make of the selected object(s), without a new version."""

    async def preview_remove(self, state: UiState, dilate: int) -> RemovePreview | None:
        """Fill the selection's place on the head this tab shows; None (with a warning) when
        another tab has moved the head since (``If-Match``). The session is not changed."""
        mask = self._need_object(state)
        assert state.session_id
        dilate = int(dilate)
        with user_errors():
            try:
                data = await self.gateway(state).remove_preview(
                    state.session_id, mask_ref(mask), dilate=dilate, if_match=state.head
                )
            except ConflictError as exc:
                if exc.code != HEAD_MOVED:
                    raise
                # A stale tab: no preview of a version that is no longer the head. Not an
                # error: the next edit shows the latest version (as every edit does).
                gr.Warning(STALE_PREVIEW, title="Not previewed")
                return None
        # Named by content: the same fill is one file, however often it is previewed.
        path = self.files.write(f"preview-{hashlib.sha256(data).hexdigest()}", data, ".png")
        caption = (
            f"Preview of removing **{mask.get('label') or 'the object'}** on v{state.head} "
            f"(dilation {dilate} px): not saved yet. Keep it to make a new version."
        )
        return RemovePreview(str(path), dilate, caption)
