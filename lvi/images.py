"""Images and masks on the wire: safe decoding, limits, fast encoding and content hashes.

Contracts carry images as base64 PNG/JPEG/WebP (a ``data:`` URI prefix is accepted).
Validation is cheap: it base64-decodes, checks the byte limit and reads only the header
(format, size, EXIF orientation), so an oversized or unsupported image is refused before
any pixel is decoded. Pixels are decoded later, off the event loop, by the worker that
needs them. Outputs are encoded with a fast PNG setting: codecs, not models, dominate the
cost of moving images (see the architecture notes). The byte limit is derived from the pixel
limit, so a lossless output of any content within the pixel limit is accepted everywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import warnings
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from lvi.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
DEFAULT_MAX_PIXELS = 4096 * 4096
_EXIF_ORIENTATION = 0x0112


def max_encoded_bytes(pixels: int, channels: int = 4) -> int:
    """Worst-case size of a lossless file (PNG or lossless WebP) of ``pixels`` pixels.

    Lossless coders cannot shrink noise: measured at 12 MP, random pixels take 100.0-100.2 %
    of the raw size in every PNG level and in lossless WebP, and a noisy photo 68-77 %
    (``bench/encode_choice.py``). PNG adds one filter byte per row (at most one per pixel,
    for a one-pixel-wide image), and deflate's stored blocks and the chunk framing add under
    0.3 %. So this bound holds for any content and any shape, and a byte limit derived from
    it never refuses an image that is within the pixel limit.
    """
    raw = pixels * (channels + 1)
    return raw + raw // 256 + 64 * 1024


DEFAULT_MAX_BYTES = max_encoded_bytes(DEFAULT_MAX_PIXELS)

# Tiny valid payloads for OpenAPI examples (docs and schema-driven fuzzers start from them).
EXAMPLE_PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAGklEQVQI12M8ISfHAANhDKvgbCYGHGBwSgAAioUCFAGpHZAAAAAASUVORK5CYII="
EXAMPLE_MASK_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAF0lEQVQI12NgQAeMDAz/wRQTTASTgQkANFIBCHqlzVUAAAAASUVORK5CYII="


@dataclass(frozen=True)
class ImageLimits:
    """Byte and pixel limits for one image. Defaults come from ``LVI_MAX_IMAGE_BYTES`` and
    ``LVI_MAX_IMAGE_PIXELS`` so that every component shares one knob.

    The pixel limit is the one that matters (it bounds memory after decoding). The byte limit
    is only a guard before decoding, so by default (``max_bytes=0``, or the variable unset)
    it is derived from the pixel limit with :func:`max_encoded_bytes`: then every image within
    the pixel limit passes, whatever its content, including a worker's lossless output of a
    noisy photo. An explicit byte limit is kept as given (stricter, at that price).
    """

    max_bytes: int = 0
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            object.__setattr__(self, "max_bytes", max_encoded_bytes(self.max_pixels))

    @classmethod
    def from_env(cls) -> ImageLimits:
        return cls(
            max_bytes=int(os.environ.get("LVI_MAX_IMAGE_BYTES") or 0),
            max_pixels=int(os.environ.get("LVI_MAX_IMAGE_PIXELS") or DEFAULT_MAX_PIXELS),
        )

    def max_body_bytes(self, images: int = 2, masks: int = 1) -> int:
        """Largest JSON body carrying ``images`` images and ``masks`` masks in base64 (plus 1 MiB
        for everything else): the default body limit of a worker, so that a request whose
        images are within these limits is never refused for its size."""
        mask_bytes = min(self.max_bytes, max_encoded_bytes(self.max_pixels, channels=1))
        return (images * self.max_bytes + masks * mask_bytes) * 4 // 3 + 1024 * 1024


def content_hash(data: bytes) -> str:
    """Content address of encoded bytes (sha256 hex)."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class EncodedImage:
    """Encoded image bytes plus what its header says. Pixels are decoded on demand.

    ``width`` and ``height`` are the size after EXIF orientation, i.e. the size in which
    coordinates are given.
    """

    data: bytes
    format: str
    width: int
    height: int
    mode: str
    orientation: int = 1
    _hash: list[str] = field(default_factory=list, repr=False, compare=False)

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.format]

    @property
    def sha256(self) -> str:
        if not self._hash:
            self._hash.append(content_hash(self.data))
        return self._hash[0]

    @classmethod
    def from_bytes(
        cls, data: bytes, limits: ImageLimits | None = None, *, param: str | None = None
    ) -> EncodedImage:
        """Check format and limits from the header only; raise our 4xx errors otherwise."""
        limits = limits or ImageLimits.from_env()
        if not data:
            raise BadRequest("Image is empty.", code="empty_image", param=param)
        if len(data) > limits.max_bytes:
            raise PayloadTooLarge(
                f"Image is {len(data)} bytes; the limit is {limits.max_bytes}.",
                code="image_too_large",
                param=param,
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data))
                fmt = img.format or ""
                width, height = img.size
                mode = img.mode
                orientation = 1
                if fmt in ("JPEG", "WEBP", "PNG"):
                    try:
                        orientation = _header_orientation(img, fmt)
                    except Exception:  # a broken EXIF block must not reject the image
                        orientation = 1
        except Image.DecompressionBombError as e:
            raise PayloadTooLarge(
                "Image has far too many pixels (decompression bomb guard).",
                code="image_too_many_pixels",
                param=param,
            ) from e
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise BadRequest(
                "Image could not be read: it is corrupt or not an image.",
                code="invalid_image",
                param=param,
            ) from e
        if fmt in ALLOWED_FORMATS and not _looks_complete(data, fmt):
            raise BadRequest(
                f"The {fmt} file is truncated (its end marker is missing).",
                code="truncated_image",
                param=param,
            )
        if fmt not in ALLOWED_FORMATS:
            raise UnsupportedMediaType(
                f"Image format {fmt or 'unknown'} is not supported; use PNG, JPEG or WebP.",
                code="unsupported_image_format",
                param=param,
            )
        if width <= 0 or height <= 0:
            raise BadRequest("Image has no pixels.", code="invalid_image", param=param)
        if width * height > limits.max_pixels:
            raise PayloadTooLarge(
                f"Image is {width}x{height} pixels; the limit is {limits.max_pixels} pixels.",
                code="image_too_many_pixels",
                param=param,
            )
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        return cls(data, fmt, width, height, mode, orientation)

    @classmethod
    def from_base64(cls, text: str, limits: ImageLimits | None = None) -> EncodedImage:
        return cls.from_bytes(b64decode_payload(text, limits), limits)

    def to_pil(self, mode: str = "RGB") -> Image.Image:
        """Decode the pixels (EXIF orientation applied). Raises BadRequest on a truncated file."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img: Image.Image = Image.open(io.BytesIO(self.data))
                img.load()
            if self.orientation != 1:
                img = ImageOps.exif_transpose(img)
            if mode and img.mode != mode:
                if mode == "RGB" and img.mode in ("RGBA", "LA", "P"):
                    img = _flatten_on_white(img)
                else:
                    img = img.convert(mode)
            return img
        except (
            OSError,
            ValueError,
            SyntaxError,  # PIL reports some broken PNG chunks (bad CRC) this way
            Image.DecompressionBombError,
            Image.DecompressionBombWarning,
        ) as e:
            raise BadRequest(
                "Image could not be decoded: it is truncated or corrupt.", code="invalid_image"
            ) from e

    def to_array(self, mode: str = "RGB") -> np.ndarray:
        """Decode to a uint8 array: HxWx3 for RGB, HxW for L."""
        return np.asarray(self.to_pil(mode))

    def to_base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def to_data_uri(self) -> str:
        return f"data:{self.mime_type};base64,{self.to_base64()}"


def _header_orientation(img: Image.Image, fmt: str) -> int:
    """EXIF orientation from the header, without decoding pixels.

    Pillow's ``PngImageFile.getexif()`` decodes the whole image to look for an eXIf chunk
    after the pixel data (140 ms for a 2048x2048 PNG), so for PNG only an eXIf chunk before
    the pixels is read, which is where writers put it.
    """
    if fmt == "PNG":
        raw = img.info.get("exif")
        if not raw:
            return 1
        exif = Image.Exif()
        exif.load(raw)
        return int(exif.get(_EXIF_ORIENTATION, 1) or 1)
    return int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1)


_TRAILER_WINDOW = 4096  # end markers may be followed by a little trailing data (camera apps)


def _looks_complete(data: bytes, fmt: str) -> bool:
    """Cheap check that the file was not cut off: the header alone cannot tell, and a truncated
    upload must not be stored as a version that every later edit fails on."""
    tail = data[-_TRAILER_WINDOW:]
    if fmt == "PNG":
        return b"IEND" in tail
    if fmt == "JPEG":
        return b"\xff\xd9" in tail
    if fmt == "WEBP":  # RIFF: bytes 4..8 hold the size of what follows them
        return len(data) >= 12 and int.from_bytes(data[4:8], "little") + 8 <= len(data)
    return True


def _flatten_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, rgba).convert("RGB")


@dataclass(frozen=True)
class EncodedMask:
    """A single-channel mask (PNG: mode L or 1). Non-zero... precisely, values >= 128 are inside."""

    image: EncodedImage

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    @classmethod
    def from_bytes(cls, data: bytes, limits: ImageLimits | None = None) -> EncodedMask:
        img = EncodedImage.from_bytes(data, limits)
        if img.mode not in ("L", "1", "P"):
            raise BadRequest(
                f"A mask must be a single-channel image (mode L or 1); got mode {img.mode}.",
                code="invalid_mask",
            )
        return cls(img)

    def to_bool(self) -> np.ndarray:
        """HxW bool array (True inside)."""
        return np.asarray(self.image.to_pil("L")) >= 128

    def to_base64(self) -> str:
        return self.image.to_base64()


def b64decode_payload(text: str, limits: ImageLimits | None = None) -> bytes:
    """Decode base64 (optionally a ``data:`` URI). The byte limit is checked on the text
    length first so a huge string is refused without decoding it."""
    limits = limits or ImageLimits.from_env()
    if text.startswith("data:"):
        head, sep, text = text.partition(",")
        if not sep or ";base64" not in head:
            raise BadRequest("Only base64 data URIs are accepted.", code="invalid_image")
    if len(text) > limits.max_bytes * 4 // 3 + 8:
        raise PayloadTooLarge(
            f"Image is over the limit of {limits.max_bytes} bytes.", code="image_too_large"
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadRequest("Image is not valid base64.", code="invalid_base64") from e


def _validate_image(value: Any) -> EncodedImage:
    if isinstance(value, EncodedImage):
        return value
    if isinstance(value, bytes):
        return EncodedImage.from_bytes(value)
    if not isinstance(value, str):
        raise ValueError("must be a base64-encoded image string")
    return EncodedImage.from_base64(value)


def _validate_mask(value: Any) -> EncodedMask:
    if isinstance(value, EncodedMask):
        return value
    if isinstance(value, bytes):
        return EncodedMask.from_bytes(value)
    if not isinstance(value, str):
        raise ValueError("must be a base64-encoded PNG mask string")
    return EncodedMask.from_bytes(b64decode_payload(value))


_IMAGE_SCHEMA = {
    "type": "string",
    "format": "byte",
    "contentEncoding": "base64",
    "description": "Base64 PNG, JPEG or WebP (a data: URI is accepted).",
}
_MASK_SCHEMA = {
    "type": "string",
    "format": "byte",
    "contentEncoding": "base64",
    "description": "Base64 single-channel PNG; pixels >= 128 are inside the mask.",
}

Base64Image = Annotated[
    EncodedImage,
    BeforeValidator(_validate_image),
    PlainSerializer(lambda v: v.to_base64(), return_type=str),
    WithJsonSchema(_IMAGE_SCHEMA),
]
"""Pydantic field type: a base64 image, validated from its header, serialised back to base64."""

Base64Mask = Annotated[
    EncodedMask,
    BeforeValidator(_validate_mask),
    PlainSerializer(lambda v: v.to_base64(), return_type=str),
    WithJsonSchema(_MASK_SCHEMA),
]
"""Pydantic field type: a base64 single-channel mask."""


PNG_LEVEL = 3
"""zlib level of every output PNG. Levels 1-3 share zlib's fast deflate; at 12 MP level 3
encodes a noisy photo within about 10 % of level 1's time (same size) and a smooth image
2.5x smaller (``bench/encode_choice.py``, docs/BENCHMARKS.md). No lossless format fits a
noisy photo in much less (lossless WebP: 68-77 % of raw, and slower or larger), so the byte limit is
derived from the pixel limit instead (:func:`max_encoded_bytes`)."""


def encode_png(array: np.ndarray, level: int = PNG_LEVEL, *, bgr: bool = False) -> bytes:
    """Encode an RGB (HxWx3), RGBA (HxWx4) or grey/bool (HxW) uint8 array as PNG; with
    ``bgr`` the colour channels are in OpenCV's BGR(A) order (no conversion needed).

    OpenCV's encoder is several times faster than PIL's default for the same pixels
    (measured: 6 ms vs 53 ms at 512x512), and the output is lossless either way.
    """
    import cv2

    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        raise ValueError("encode_png expects uint8 or bool pixels")
    if bgr:
        pass
    elif arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:  # pragma: no cover - OpenCV fails only on impossible shapes
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def encode_image(array: np.ndarray, *, bgr: bool = False) -> EncodedImage:
    """Encode pixels as a fast PNG and wrap them without re-reading the header."""
    data = encode_png(array, bgr=bgr)
    h, w = array.shape[:2]
    mode = "L" if array.ndim == 2 else ("RGBA" if array.shape[2] == 4 else "RGB")
    return EncodedImage(data, "PNG", w, h, mode)


def encode_mask(mask: np.ndarray) -> EncodedMask:
    """Encode a bool (or 0/255) HxW array as a single-channel PNG mask."""
    arr = np.asarray(mask)
    if arr.dtype != bool:
        arr = arr >= 128
    return EncodedMask(encode_image(arr.astype(np.uint8) * 255))
