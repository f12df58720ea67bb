"""Helpers for the gateway's tests: small images and masks, made locally."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def photo(width: int = 96, height: int = 64, seed: int = 0) -> np.ndarray:
    """A textured RGB test picture (gradients plus noise, so inpainting has work to do)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack(
        [(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)), (x + y) % 256], axis=-1
    ).astype(np.int16)
    img += rng.integers(-20, 20, size=img.shape, dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def rect_mask(width: int, height: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """A bool mask, True inside ``box`` = (x0, y0, x1, y1)."""
    m = np.zeros((height, width), bool)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = True
    return m


def mask_png(mask: np.ndarray) -> bytes:
    return png(mask.astype(np.uint8) * 255)


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """The inpaint worker's dilation (elliptical kernel), to know which pixels may change."""
    import cv2

    if radius <= 0:
        return mask
    k = 2 * radius + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
