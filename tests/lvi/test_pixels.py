"""lvi.pixels: OpenCV decoding gives PIL's pixels (or falls back to PIL), and the hand-built
JSON body is byte for byte what FastAPI renders for the same model."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from PIL import Image
from support.imaging import jpeg_bytes, png_bytes, scene

from lvi.contracts.inpaint import CompositeResponse, InpaintResponse
from lvi.images import EncodedImage, EncodedMask, encode_image, encode_mask, encode_png
from lvi.masks import has_alpha, split_alpha
from lvi.pixels import decode_bgr, decode_grey, model_json

W, H = 47, 33
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (H, W, 3), np.uint8)
RGBA = np.dstack([RGB, RNG.integers(0, 256, (H, W), np.uint8)])


def saved(img: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def rotated_png() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return saved(Image.fromarray(RGB), exif=exif)


IMAGES = {
    "rgb": png_bytes(RGB),
    "rgba": png_bytes(RGBA),
    "grey": png_bytes(RGB[..., 0]),
    "palette": saved(Image.fromarray(RGB).convert("P")),
    "palette_trns": saved(Image.fromarray(RGB).convert("P"), transparency=3),
    "rgb_trns": saved(Image.fromarray(RGB), transparency=(1, 2, 3)),
    "rgb16": cv2.imencode(".png", RNG.integers(0, 65536, (H, W, 3), np.uint16))[1].tobytes(),
    "rgb_opencv": cv2.imencode(".png", RGB, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes(),
    "jpeg": jpeg_bytes(RGB),
    "jpeg_rotated": jpeg_bytes(RGB, exif_orientation=6),
    "png_rotated": rotated_png(),
    "webp": saved(Image.fromarray(RGB), "WEBP", lossless=True),
}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_decode_bgr_is_the_alpha_split_in_opencv_order(name: str) -> None:
    image = EncodedImage.from_bytes(IMAGES[name])
    rgb, alpha = split_alpha(image)
    got = decode_bgr(image, has_alpha(image))
    assert got.flags.writeable and got.dtype == np.uint8
    if alpha is None:
        np.testing.assert_array_equal(got, rgb[..., ::-1])
    else:
        np.testing.assert_array_equal(got, np.dstack([rgb[..., ::-1], alpha]))


@pytest.mark.parametrize(
    "data",
    [
        png_bytes(RGB[..., 0]),
        png_bytes(RGB[..., 0] >= 128),  # mode 1
        saved(Image.fromarray(RGB[..., 0]), transparency=7),
        saved(Image.fromarray(RGB).convert("P")),
    ],
)
def test_decode_grey_is_the_masks_own_reading(data: bytes) -> None:
    mask = EncodedMask(EncodedImage.from_bytes(data))
    got = decode_grey(mask)
    np.testing.assert_array_equal(got >= 128, mask.to_bool())
    np.testing.assert_array_equal(got, np.asarray(mask.image.to_pil("L")))


def test_encode_png_takes_bgr_without_changing_the_file() -> None:
    assert encode_png(RGB) == encode_png(np.ascontiguousarray(RGB[..., ::-1]), bgr=True)
    bgra = np.dstack([RGB[..., ::-1], RGBA[..., 3]])
    assert encode_png(RGBA) == encode_png(bgra, bgr=True)
    assert encode_image(bgra, bgr=True).mode == "RGBA"


def fastapi_body(model: object) -> bytes:
    return bytes(JSONResponse(jsonable_encoder(model)).body)


@pytest.mark.parametrize(
    "model",
    [
        InpaintResponse(
            image=encode_image(scene(64, 48)),
            width=64,
            height=48,
            method="telea",
            mask_area=12,
            region=[1, 2, 3, 4],
        ),
        InpaintResponse(image=encode_image(RGB), width=W, height=H, method="none", mask_area=0),
        CompositeResponse(
            image=encode_image(RGBA),
            width=W,
            height=H,
            mask=encode_mask(RGB[..., 0] > 9),
            bbox=[0, 0, 5, 5],
        ),
        CompositeResponse(image=encode_image(RGB), width=W, height=H),
    ],
)
def test_model_json_is_what_fastapi_sends(model: InpaintResponse | CompositeResponse) -> None:
    assert model_json(model) == fastapi_body(model)


def test_the_opencv_path_is_taken_only_where_it_gives_pils_pixels() -> None:
    from lvi.pixels import _cv2_png

    fast = {
        name
        for name, data in IMAGES.items()
        for mode in ("RGB", "RGBA", "L")
        if _cv2_png(EncodedImage.from_bytes(data), mode) is not None
    }
    assert fast == {"rgb", "rgba", "grey", "rgb_opencv"}
