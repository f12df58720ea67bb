"""The hot path of pixel workers: decode once with OpenCV, render big JSON answers without
pydantic.

A worker that edits an image in place (inpaint) spends its time in the PNG codecs; what it
adds around them must stay small (``bench/inpaint_floor.py``, docs/BENCHMARKS.md):

- :func:`decode_bgr` and :func:`decode_grey` decode with ``cv2.imdecode`` when that gives the
  very pixels PIL would (8-bit PNG, no EXIF rotation, the channel count the header promises)
  and fall back to the PIL path otherwise, so JPEG, WebP, palettes, 16-bit and rotated
  images behave exactly as before. Pixels come back in OpenCV's BGR(A) order, which is what
  ``cv2.inpaint`` and :func:`lvi.images.encode_png` (``bgr=True``) use, so no full-image
  colour conversion is needed on the way in or out.
- :func:`model_json` renders a response model whose image fields hold encoded bytes as the
  same compact JSON FastAPI would send, but base64-encodes each image straight into the body
  instead of building a multi-MB ``str`` that pydantic then re-validates and JSON escapes.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image
from pydantic import BaseModel

from lvi.images import EncodedImage, EncodedMask

Array = npt.NDArray[Any]

# Header modes whose 8-bit PNG OpenCV decodes to the same pixels as PIL, by channel count.
_CV2_CHANNELS = {"RGB": 3, "RGBA": 4, "L": 1}


def _cv2_png(image: EncodedImage, mode: str) -> Array | None:
    """OpenCV's decode of ``image`` when it is pixel-identical to PIL's in ``mode``, else None.

    PIL reports 16-bit colour PNGs as "RGB"/"RGBA" too, and OpenCV may expand a tRNS chunk to
    an alpha channel: the dtype and shape checks send those (and anything OpenCV cannot read)
    back to the PIL path, which keeps its own error messages.
    """
    if (
        image.format != "PNG"
        or image.orientation != 1
        or image.mode != mode
        or image.width * image.height > (Image.MAX_IMAGE_PIXELS or 0)  # PIL's bomb guard
    ):
        return None
    arr = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_UNCHANGED)
    channels = _CV2_CHANNELS[mode]
    if (
        arr is None
        or arr.dtype != np.uint8
        or arr.shape[:2] != (image.height, image.width)
        or (arr.shape[2] if arr.ndim == 3 else 1) != channels
    ):
        return None
    return np.asarray(arr)


def decode_bgr(image: EncodedImage, alpha: bool) -> Array:
    """Writable HxWx3 BGR pixels, or HxWx4 BGRA with ``alpha`` (as :func:`lvi.masks.split_alpha`
    would decode them, in OpenCV's channel order)."""
    mode = "RGBA" if alpha else "RGB"
    arr = _cv2_png(image, mode)
    if arr is not None:
        return arr
    rgb = image.to_array(mode)
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA if alpha else cv2.COLOR_RGB2BGR))


def decode_grey(mask: EncodedMask) -> Array:
    """The mask's HxW uint8 pixels (inside is >= 128), as :meth:`EncodedMask.to_bool` reads them."""
    arr = _cv2_png(mask.image, "L")
    if arr is not None:
        return arr
    return np.asarray(mask.image.to_pil("L"))


def model_json(model: BaseModel) -> bytes:
    """``model`` as the compact JSON FastAPI renders for it (field order, ``null``s, no spaces),
    with :class:`EncodedImage`/:class:`EncodedMask` fields written as base64 without passing
    through a ``str``."""
    fields = type(model).model_fields
    blobs: dict[str, bytes] = {}
    for name in fields:
        value = getattr(model, name)
        if isinstance(value, EncodedMask):
            value = value.image
        if isinstance(value, EncodedImage):
            blobs[name] = value.data
    rest = model.model_dump(mode="json", exclude=set(blobs))
    parts: list[bytes] = []
    for name in fields:
        parts.append(b"," if parts else b"{")
        parts.append(_dumps(name) + b":")
        if name in blobs:
            # Base64 has no character JSON must escape: the bytes go in as they are.
            parts += (b'"', base64.b64encode(blobs[name]), b'"')
        else:
            parts.append(_dumps(rest[name]))
    parts.append(b"}" if parts else b"{}")
    return b"".join(parts)


def _dumps(value: Any) -> bytes:
    # Starlette's JSONResponse.render settings, so the bytes match FastAPI's own rendering.
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
