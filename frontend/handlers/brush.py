"""The mask brush: paint over the image to add to, or erase from, the selected object's mask.

The brush canvas shows the head with the current mask tinted on it; what the user paints
is combined with the mask at the image's full size (add: union, erase: minus), uploaded as
a painted mask (``POST /v1/sessions/{id}/masks``) and becomes the selected object.
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from PIL import Image

from frontend.handlers.errors import fail, user_errors
from frontend.handlers.inputs import painted_mask
from frontend.handlers.segment import SegmentHandlers
from frontend.handlers.state import MaskView, UiState

BrushMode = Literal["add", "erase"]
TINT = np.array([37, 99, 235], np.float32)  # the selected object's blue on the brush canvas


def combine_masks(mask: np.ndarray, strokes: np.ndarray, mode: str) -> np.ndarray:
    """The mask after the brush: ``add`` is the union, ``erase`` the mask minus the strokes
    (both bool arrays of one size)."""
    if mode == "add":
        return np.asarray(mask | strokes, dtype=bool)
    if mode == "erase":
        return np.asarray(mask & ~strokes, dtype=bool)
    raise fail(f"Unknown brush mode {mode!r}: choose 'add' or 'erase'.")


def mask_png(mask: np.ndarray) -> bytes:
    """A bool mask as the gateway takes it: single-channel PNG, white inside."""
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255, "L").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_mask(png: bytes, width: int, height: int) -> np.ndarray:
    """A mask PNG as a bool array of (height, width)."""
    with Image.open(io.BytesIO(png)) as im:
        gray = im.convert("L")
        if gray.size != (width, height):
            gray = gray.resize((width, height), Image.Resampling.NEAREST)
        return np.asarray(gray) >= 128


class BrushHandlers(SegmentHandlers):
    """Refine the selected object's mask with a brush."""

    async def brush_mask(
        self, state: UiState, editor_value: dict[str, Any] | None, mode: str
    ) -> tuple[UiState, MaskView]:
        """Combine the strokes painted on the brush canvas with the selected mask, store the
        result as a new mask of the head and select it."""
        current = self._need_object(state)
        assert state.session_id
        strokes = painted_mask(editor_value, state.width, state.height)
        if strokes is None:
            raise fail("Paint over the image with the brush first, then apply it to the mask.")
        client = self.gateway(state)
        with user_errors():
            png = await client.get_mask(state.session_id, current["mask_id"])
        mask = decode_mask(png, state.width, state.height)
        combined = combine_masks(mask, strokes, mode)
        if not combined.any():
            raise fail(
                "That would erase the whole mask. Erase less, or clear the prompts to start over.",
                "Empty mask",
            )
        if np.array_equal(combined, mask):
            raise fail(
                "The brush changed nothing: paint outside the mask to add, inside it to erase."
            )
        data = mask_png(combined)
        with user_errors():
            info = await client.upload_mask(state.session_id, data, version=state.head)
        # A painted mask has no label of its own: it is still the object the user selected.
        info = info.model_copy(update={"label": info.label or current.get("label")})
        state = replace(state, mask=info.model_dump(mode="json"))
        return state, self._mask_view(state, info, data)

    def brush_canvas(self, state: UiState, mask_png_bytes: bytes | None = None) -> str | None:
        """The brush canvas's background: the head with the selected mask tinted on it."""
        if state.head_path is None:
            return None
        if not state.mask or mask_png_bytes is None:
            return state.head_path
        key = f"brush-{state.session_id}-{state.mask['mask_id']}"
        path = self.files.known(key)
        if path is not None:
            return str(path)
        with Image.open(state.head_path) as im:
            rgb = np.asarray(im.convert("RGB"), np.float32)
        inside = decode_mask(mask_png_bytes, rgb.shape[1], rgb.shape[0])
        rgb[inside] = rgb[inside] * 0.5 + TINT * 0.5
        buf = io.BytesIO()
        Image.fromarray(rgb.astype(np.uint8)).save(buf, format="JPEG", quality=90)
        return str(self.files.write(key, buf.getvalue(), ".jpg"))

    async def brush_view(self, state: UiState) -> str | None:
        """:meth:`brush_canvas` for the state's selected mask (fetched from the gateway)."""
        if state.head_path is None or not state.mask or not state.session_id:
            return state.head_path
        key = f"brush-{state.session_id}-{state.mask['mask_id']}"
        path = self.files.known(key)
        if path is not None:
            return str(path)
        with user_errors():
            png = await self.gateway(state).get_mask(state.session_id, state.mask["mask_id"])
        return self.brush_canvas(state, png)


def lost_background(editor_value: dict[str, Any] | None) -> bool:
    """Whether an ``ImageEditor`` value has no background left (its own undo went past the
    image the app set, or its "clear canvas" removed it)."""
    if not editor_value:
        return True
    background = editor_value.get("background")
    if background is None:
        return True
    arr = np.asarray(background)
    # An emptied canvas comes back as a fully transparent image, not as None.
    return bool(arr.ndim == 3 and arr.shape[2] == 4 and not arr[..., 3].any())
