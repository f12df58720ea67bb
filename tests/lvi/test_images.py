"""lvi.images: header-only validation, limits, safe decoding, EXIF, fast encoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydantic import BaseModel
from support.imaging import b64, jpeg_bytes, png_bytes, scene

from lvi.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from lvi.images import (
    DEFAULT_MAX_PIXELS,
    Base64Image,
    Base64Mask,
    EncodedImage,
    EncodedMask,
    ImageLimits,
    content_hash,
    encode_image,
    encode_mask,
    encode_png,
    max_encoded_bytes,
)


class Req(BaseModel):
    image: Base64Image
    mask: Base64Mask | None = None


def test_png_roundtrip_is_lossless_and_hash_is_content_address() -> None:
    arr = scene(64, 48)
    img = EncodedImage.from_bytes(encode_png(arr))
    assert img.format == "PNG" and img.size == (64, 48)
    np.testing.assert_array_equal(img.to_array(), arr)
    assert img.sha256 == content_hash(img.data)
    assert EncodedImage.from_bytes(encode_png(arr)).sha256 == img.sha256


def test_data_uri_and_pydantic_roundtrip() -> None:
    data = png_bytes(scene(16, 16))
    r = Req.model_validate({"image": "data:image/png;base64," + b64(data)})
    assert r.image.data == data
    assert r.model_dump()["image"] == b64(data)
    schema = Req.model_json_schema()
    assert schema["properties"]["image"]["format"] == "byte"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ("", BadRequest),
        ("!!!notbase64", BadRequest),
        (b64(b"GIF89a not really"), BadRequest),
        (b64(png_bytes(scene(32, 32))[:20]), BadRequest),
    ],
)
def test_bad_payloads_raise_4xx(payload: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        EncodedImage.from_base64(payload) if payload else EncodedImage.from_bytes(b"")


def test_corrupt_pixels_are_refused_on_decode() -> None:
    data = bytearray(png_bytes(scene(64, 64)))
    mid = len(data) // 2
    data[mid : mid + 64] = b"\x00" * 64  # header and IEND intact, compressed pixels broken
    img = EncodedImage.from_bytes(bytes(data))
    with pytest.raises(BadRequest):
        img.to_pil()


def test_unsupported_format_is_415() -> None:
    buf = io.BytesIO()
    Image.fromarray(scene(8, 8)).save(buf, "BMP")
    with pytest.raises(UnsupportedMediaType):
        EncodedImage.from_bytes(buf.getvalue())


def test_byte_and_pixel_limits() -> None:
    data = png_bytes(scene(64, 64))
    with pytest.raises(PayloadTooLarge):
        EncodedImage.from_bytes(data, ImageLimits(max_bytes=100))
    with pytest.raises(PayloadTooLarge):
        EncodedImage.from_bytes(data, ImageLimits(max_pixels=64 * 63))
    with pytest.raises(PayloadTooLarge):
        EncodedImage.from_base64("A" * 1000, ImageLimits(max_bytes=100))


def test_decompression_bomb_is_refused_from_header() -> None:
    # A 20000x20000 single-colour PNG compresses to a few hundred KB; refused before decoding.
    big = Image.new("L", (20000, 20000), 0)
    buf = io.BytesIO()
    big.save(buf, "PNG", compress_level=9)
    with pytest.raises(PayloadTooLarge):
        EncodedImage.from_bytes(buf.getvalue())


def test_exif_orientation_is_applied_and_size_reported_after_it() -> None:
    arr = scene(40, 20)
    img = EncodedImage.from_bytes(jpeg_bytes(arr, exif_orientation=6))  # rotate 90 degrees
    assert img.size == (20, 40)
    assert img.to_array().shape == (40, 20, 3)


def test_mask_must_be_single_channel() -> None:
    with pytest.raises(BadRequest):
        EncodedMask.from_bytes(png_bytes(scene(8, 8)))
    m = np.zeros((8, 8), np.uint8)
    m[2:4, 2:4] = 255
    mask = EncodedMask.from_bytes(png_bytes(m))
    assert mask.to_bool().sum() == 4


def test_encoders_keep_pixels() -> None:
    arr = scene(33, 17)
    enc = encode_image(arr)
    assert enc.size == (33, 17)
    np.testing.assert_array_equal(EncodedImage.from_bytes(enc.data).to_array(), arr)
    rgba = np.dstack([arr, np.full(arr.shape[:2], 7, np.uint8)])
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encode_png(rgba)))), rgba)
    m = np.zeros((17, 33), bool)
    m[3:9, 4:20] = True
    np.testing.assert_array_equal(encode_mask(m).to_bool(), m)
    with pytest.raises(ValueError):
        encode_png(arr.astype(np.float32))


def test_truncated_files_are_refused_from_their_trailer() -> None:
    arr = scene(64, 64)
    for data in (png_bytes(arr), jpeg_bytes(arr)):
        assert EncodedImage.from_bytes(data).size == (64, 64)
        with pytest.raises(BadRequest) as info:
            EncodedImage.from_bytes(data[: len(data) // 2])
        assert info.value.code == "truncated_image"
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "WEBP")
    webp = buf.getvalue()
    assert EncodedImage.from_bytes(webp).format == "WEBP"
    with pytest.raises(BadRequest):
        EncodedImage.from_bytes(webp[:-10])


@pytest.mark.parametrize(
    ("width", "height", "channels"),
    [(256, 192, 3), (192, 256, 4), (1, 4096, 4), (4096, 1, 3), (64, 64, 1), (3, 2000, 1)],
)
def test_lossless_outputs_of_any_content_fit_the_derived_byte_limit(
    width: int, height: int, channels: int
) -> None:
    """Random pixels are the worst case of every lossless coder (and a one-pixel-wide image
    the worst shape for PNG): they still pass the limit derived from their pixel count."""
    rng = np.random.default_rng(width * height + channels)
    shape = (height, width) if channels == 1 else (height, width, channels)
    arr = rng.integers(0, 256, shape, dtype=np.uint8)
    limits = ImageLimits(max_pixels=width * height)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "WEBP", lossless=True, method=0, quality=0)
    webp = buf.getvalue() if channels != 1 else b""
    for data in (encode_png(arr), encode_png(arr, level=1), png_bytes(arr), webp):
        if data:
            assert len(data) <= max_encoded_bytes(width * height, channels)
            assert EncodedImage.from_bytes(data, limits).size == (width, height)


def test_byte_limit_is_derived_from_the_pixel_limit_unless_set() -> None:
    assert ImageLimits().max_bytes == max_encoded_bytes(DEFAULT_MAX_PIXELS)
    # A 4096x4096 RGBA image of noise (67 MB raw) is within the default limits.
    assert ImageLimits().max_bytes > 4096 * 4096 * 4
    assert ImageLimits(max_pixels=1000).max_bytes == max_encoded_bytes(1000)
    assert ImageLimits(max_bytes=123).max_bytes == 123
    # A worker's body limit holds two images and a mask in base64.
    lim = ImageLimits(max_pixels=1000)
    assert lim.max_body_bytes() >= (2 * lim.max_bytes + max_encoded_bytes(1000, 1)) * 4 // 3


def test_limits_from_env_derive_bytes_from_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LVI_MAX_IMAGE_BYTES", raising=False)
    monkeypatch.setenv("LVI_MAX_IMAGE_PIXELS", "4000")
    assert ImageLimits.from_env() == ImageLimits(max_bytes=max_encoded_bytes(4000), max_pixels=4000)
    monkeypatch.setenv("LVI_MAX_IMAGE_BYTES", "5000")
    assert ImageLimits.from_env().max_bytes == 5000


def test_noisy_12_megapixel_output_is_within_the_default_limits() -> None:
    """The issue's case: a 4000x3000 photo's lossless re-encode (about 26 MB for the noisy
    test scene) was over the old fixed 25 MiB limit; the derived limit takes it."""
    arr = scene(4000, 3000, seed=1)
    img = encode_image(arr)
    assert len(img.data) > 20 * 1024 * 1024
    assert EncodedImage.from_bytes(img.data, ImageLimits()).size == (4000, 3000)
