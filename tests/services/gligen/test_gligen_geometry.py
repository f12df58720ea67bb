"""The inpainting geometry of the gligen backend (pure numpy/OpenCV, no model): where the
crop goes, how boxes map into it, and that feathering and pasting never leave the mask."""

from __future__ import annotations

import numpy as np
import pytest

from lvi.masks import mask_bbox
from services.gligen.backend import (
    Crop,
    boxes_mask,
    boxes_to_pixels,
    crop_boxes,
    cut_square,
    feather_alpha,
    paste,
    plan_crop,
)


def test_boxes_to_pixels_covers_partial_pixels_and_never_vanishes() -> None:
    assert boxes_to_pixels([[0.1, 0.2, 0.35, 0.5]], (100, 10)) == [(10, 2, 35, 5)]
    assert boxes_to_pixels([[0.101, 0.0, 0.102, 1.0]], (100, 10)) == [(10, 0, 11, 10)]
    assert boxes_to_pixels([[0.999, 0.999, 1.0, 1.0]], (10, 10)) == [(9, 9, 10, 10)]


@pytest.mark.parametrize(
    ("union", "size", "expected"),
    [
        ((100, 100, 120, 124), (640, 360), Crop(78, 80, 64)),  # small edit: native, 1:1
        ((0, 0, 20, 20), (640, 360), Crop(0, 0, 64)),  # pushed inside at a corner
        ((600, 300, 640, 360), (640, 360), Crop(520, 240, 120)),  # grown by context, inside
        ((10, 10, 190, 110), (200, 120), Crop(0, -40, 200)),  # wider than tall: padded in y
    ],
)
def test_plan_crop(union: tuple[int, int, int, int], size: tuple[int, int], expected: Crop) -> None:
    crop = plan_crop(union, size, context=0.5, min_side=64)
    assert crop == expected
    x0, y0, x1, y1 = crop.box
    assert x0 <= union[0] and y0 <= union[1] and x1 >= union[2] and y1 >= union[3]


def test_cut_square_pads_outside_the_image_by_reflection() -> None:
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    sq = cut_square(img, Crop(0, -1, 6))
    assert sq.shape == (6, 6, 3)
    np.testing.assert_array_equal(sq[1:5], img)
    np.testing.assert_array_equal(sq[0], img[1])  # reflected, not a constant border
    strip = np.zeros((1, 5, 3), np.uint8)
    assert cut_square(strip, Crop(0, -2, 5)).shape == (5, 5, 3)


def test_crop_boxes_cover_whole_latent_cells_as_the_pipeline_truncates_them() -> None:
    size, crop, cells = (200, 120), Crop(0, -40, 200), 32
    boxes = [[0.13, 0.27, 0.41, 0.63]]
    (rel,) = crop_boxes(boxes, size, crop, cells)
    # The pipeline draws its mask with int(edge * cells); those cells must cover the box.
    lo_x, lo_y = int(rel[0] * cells), int(rel[1] * cells)
    hi_x, hi_y = int(rel[2] * cells), int(rel[3] * cells)
    px0, py0, px1, py1 = 0.13 * 200, 0.27 * 120 + 40, 0.41 * 200, 0.63 * 120 + 40
    scale = cells / crop.side
    assert lo_x <= px0 * scale and lo_y <= py0 * scale
    assert hi_x >= px1 * scale and hi_y >= py1 * scale
    assert hi_x - px1 * scale < 1 and px0 * scale - lo_x < 1  # grown by less than a cell
    assert all(0.0 <= v <= 1.0 for v in rel)


def test_feather_stays_inside_the_mask_and_ignores_the_image_border() -> None:
    mask = boxes_mask([(0, 4, 10, 16)], (20, 20))
    alpha = feather_alpha(mask, 4)
    assert (alpha[~mask] == 0).all() and (alpha[mask] > 0).all()
    assert alpha[10, 0] == 1.0  # touching the image border: nothing to blend with there
    assert alpha[4, 5] < 1.0  # an inner edge is soft
    assert alpha[10, 5] == 1.0
    assert (feather_alpha(mask, 0) == mask).all()


def test_paste_touches_only_weighted_pixels() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    patch = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
    mask = boxes_mask([(5, 5, 25, 20)], (40, 30))
    out = paste(base, patch, (-5, -10), feather_alpha(mask, 3))
    np.testing.assert_array_equal(out[~mask], base[~mask])
    np.testing.assert_array_equal(out[12, 15], patch[22, 20])  # deep inside: the patch
    assert mask_bbox(mask) == (5, 5, 25, 20)
