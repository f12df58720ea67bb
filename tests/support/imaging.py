"""Synthetic test images (no downloads): textured scenes, masks, and codecs."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A textured RGB scene: smooth gradients plus noise plus a few coloured shapes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            128 + 60 * np.sin(xx / 37.0),
            128 + 60 * np.cos(yy / 29.0),
            128 + 40 * np.sin((xx + yy) / 53.0),
        ],
        axis=-1,
    )
    base += rng.normal(0, 12, size=base.shape)
    img = np.clip(base, 0, 255).astype(np.uint8)
    img[height // 4 : height // 2, width // 4 : width // 2] = (200, 40, 40)
    return img


def png_bytes(arr: np.ndarray, **save: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG", **save)
    return buf.getvalue()


def jpeg_bytes(arr: np.ndarray, exif_orientation: int | None = None) -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(arr)
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        img.save(buf, "JPEG", quality=90, exif=exif)
    else:
        img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def rect_mask(width: int, height: int, box: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros((height, width), np.uint8)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = 255
    return m


def decode(data: bytes | str, mode: str = "RGB") -> np.ndarray:
    if isinstance(data, str):
        data = base64.b64decode(data)
    return np.asarray(Image.open(io.BytesIO(data)).convert(mode))
