"""lvi.masks: bbox, area, morphology and the alpha split every worker shares."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from support.imaging import png_bytes, scene

from lvi.images import EncodedImage
from lvi.masks import (
    dilate,
    disk,
    erode,
    join_alpha,
    mask_bbox,
    mask_stats,
    morph,
    split_alpha,
)

W, H = 80, 60


def rect() -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[20:30, 20:40] = True
    return m


def test_mask_bbox_is_exclusive_and_none_when_empty() -> None:
    assert mask_bbox(rect()) == (20, 20, 40, 30)
    assert mask_bbox(np.zeros((H, W), bool)) is None
    one = np.zeros((H, W), bool)
    one[0, W - 1] = True
    assert mask_bbox(one) == (W - 1, 0, W, 1)


def test_mask_stats_gives_a_list_bbox_and_the_area() -> None:
    assert mask_stats(rect()) == ([20, 20, 40, 30], 200)
    assert mask_stats(np.zeros((H, W), bool)) == (None, 0)


def test_dilate_erode_and_morph() -> None:
    m = rect()
    assert disk(2).shape == (5, 5)
    assert mask_bbox(dilate(m, 3)) == (17, 17, 43, 33)
    assert mask_bbox(erode(m, 2)) == (22, 22, 38, 28)
    assert mask_bbox(morph(m, 0, 3)) == (17, 17, 43, 33)
    assert not morph(m, 6, 0).any()  # eroded away: dilating after has nothing to grow
    # A zero radius or an empty mask is handed back as it is (no copy, no OpenCV call).
    assert dilate(m, 0) is m and erode(m, 0) is m
    empty = np.zeros((H, W), bool)
    assert dilate(empty, 4) is empty
    assert dilate(m, 3).dtype == bool


def test_split_and_join_alpha_round_trip() -> None:
    rgb = scene(W, H)
    plain = EncodedImage.from_bytes(png_bytes(rgb))
    px, alpha = split_alpha(plain)
    assert alpha is None and px.shape == (H, W, 3)
    np.testing.assert_array_equal(join_alpha(px, alpha), rgb)

    a = np.linspace(0, 255, W * H).astype(np.uint8).reshape(H, W)
    rgba = np.dstack([rgb, a])
    with_alpha = EncodedImage.from_bytes(png_bytes(rgba))
    px, alpha = split_alpha(with_alpha)
    assert alpha is not None and px.shape == (H, W, 3) and px.flags.c_contiguous
    np.testing.assert_array_equal(alpha, a)
    np.testing.assert_array_equal(join_alpha(px, alpha), rgba)


def test_a_palette_png_with_transparency_keeps_its_alpha() -> None:
    im = Image.new("P", (8, 4))
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((1, 1), 1)
    buf = io.BytesIO()
    im.save(buf, "PNG", transparency=0)
    px, alpha = split_alpha(EncodedImage.from_bytes(buf.getvalue()))
    assert alpha is not None and alpha.shape == (4, 8)
    assert alpha[1, 1] == 255 and alpha[0, 0] == 0
    assert tuple(px[1, 1]) == (255, 0, 0)
