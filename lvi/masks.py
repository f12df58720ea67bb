"""Mask and pixel helpers shared by the workers (and the gateway's mask statistics).

Masks here are ``HxW`` bool arrays; boxes are ``(x0, y0, x1, y1)`` with exclusive ends, in
pixels. OpenCV is imported inside the morphology helpers only, so importing this module stays
cheap for callers that need just the bbox or the alpha split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from lvi.images import EncodedImage

Array = npt.NDArray[Any]
BBox = tuple[int, int, int, int]

# Image modes that carry transparency; a palette image has it when its PNG has a tRNS chunk.
_ALPHA_MODES = ("RGBA", "LA", "PA")


def mask_bbox(mask: Array) -> BBox | None:
    """``(x0, y0, x1, y1)`` of the True pixels (ends exclusive), or None for an empty mask."""
    rows = np.flatnonzero(mask.any(1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def mask_stats(mask: Array) -> tuple[list[int] | None, int]:
    """The bbox (as a list, or None when empty) and the area in pixels of a bool mask."""
    bbox = mask_bbox(mask)
    return (list(bbox) if bbox is not None else None), int(np.count_nonzero(mask))


def disk(radius: int) -> Array:
    """An elliptical ``(2r+1)x(2r+1)`` structuring element."""
    import cv2

    k = 2 * radius + 1
    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))


def dilate(mask: Array, radius: int) -> Array:
    """Grow a bool mask by ``radius`` pixels (elliptical kernel); returned as is when it is
    empty or the radius is 0."""
    if radius <= 0 or not mask.any():
        return mask
    import cv2

    return np.asarray(cv2.dilate(mask.astype(np.uint8), disk(radius))).astype(bool)


def erode(mask: Array, radius: int) -> Array:
    """Shrink a bool mask by ``radius`` pixels (elliptical kernel)."""
    if radius <= 0 or not mask.any():
        return mask
    import cv2

    return np.asarray(cv2.erode(mask.astype(np.uint8), disk(radius))).astype(bool)


def morph(mask: Array, erode_px: int, dilate_px: int) -> Array:
    """Erode, then dilate a bool mask by the given radii."""
    return dilate(erode(mask, erode_px), dilate_px)


def has_alpha(image: EncodedImage) -> bool:
    """Whether the image carries transparency (its header's mode; a palette with tRNS)."""
    return image.mode in _ALPHA_MODES or (image.mode == "P" and b"tRNS" in image.data[:4096])


def split_alpha(image: EncodedImage) -> tuple[Array, Array | None]:
    """RGB pixels, plus the alpha channel when the image has one (kept untouched)."""
    if has_alpha(image):
        rgba = image.to_array("RGBA")
        return np.ascontiguousarray(rgba[..., :3]), rgba[..., 3]
    return image.to_array("RGB"), None


def join_alpha(rgb: Array, alpha: Array | None) -> Array:
    """The inverse of :func:`split_alpha`: RGBA when there was an alpha channel, else RGB."""
    return rgb if alpha is None else np.dstack([rgb, alpha])
