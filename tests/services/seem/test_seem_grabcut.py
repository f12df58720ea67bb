"""GrabCut quality on synthetic scenes with known ground truth, and its edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from support.seem_scenes import iou, textured_scene

from services.seem.grabcut import GrabCutSegmenter
from services.seem.prompts import ObjectPrompt

SEEDS = range(10)


@pytest.fixture(scope="module")
def segmenter() -> GrabCutSegmenter:
    return GrabCutSegmenter()  # the worker's defaults


def test_loose_box_mean_iou_at_least_0_9(segmenter: GrabCutSegmenter) -> None:
    ious = []
    for seed in SEEDS:
        rgb, gt, box = textured_scene(seed)
        mask = segmenter.segment(rgb, ObjectPrompt(box=box))
        assert mask.shape == gt.shape and mask.dtype == bool
        # Outside the box is certain background.
        x0, y0, x1, y1 = box
        assert not mask[:, : int(x0)].any() and not mask[:, int(np.ceil(x1)) :].any()
        assert not mask[: int(y0)].any() and not mask[int(np.ceil(y1)) :].any()
        ious.append(iou(mask, gt))
    assert np.mean(ious) >= 0.9, [round(v, 3) for v in ious]


def test_click_and_stroke_seeds_find_the_object(segmenter: GrabCutSegmenter) -> None:
    click_ious, stroke_ious = [], []
    for seed in range(6):
        rgb, gt, _ = textured_scene(seed)
        ys, xs = np.nonzero(gt)
        cx, cy = float(xs.mean()), float(ys.mean())
        click = ObjectPrompt(points=np.array([[cx, cy]], np.float32), labels=np.ones(1, np.int64))
        click_ious.append(iou(segmenter.segment(rgb, click), gt))
        stroke = np.zeros_like(gt)
        stroke[int(cy) - 1 : int(cy) + 2, int(cx) - 12 : int(cx) + 12] = True
        stroke &= gt
        stroke_ious.append(iou(segmenter.segment(rgb, ObjectPrompt(stroke=stroke)), gt))
    assert np.mean(click_ious) >= 0.85, click_ious
    assert np.mean(stroke_ious) >= 0.85, stroke_ious


def test_large_image_is_worked_small_and_returned_full_size() -> None:
    rgb, gt, box = textured_scene(2, 1200, 900)
    seg = GrabCutSegmenter(max_side=256)
    mask = seg.segment(rgb, ObjectPrompt(box=box))
    assert mask.shape == (900, 1200)
    assert iou(mask, gt) >= 0.85


def test_negative_click_removes_a_region(segmenter: GrabCutSegmenter) -> None:
    rgb, gt, box = textured_scene(4)
    ys, xs = np.nonzero(gt)
    # A negative click on the object's centre: that pixel must end up outside.
    cx, cy = float(xs.mean()), float(ys.mean())
    obj = ObjectPrompt(box=box, points=np.array([[cx, cy]], np.float32), labels=np.zeros(1))
    mask = segmenter.segment(rgb, obj)
    assert not mask[int(cy), int(cx)]


def test_degenerate_inputs_do_not_fail(segmenter: GrabCutSegmenter) -> None:
    rgb, _, _ = textured_scene(0, 64, 48)
    # A box that is the whole image: no pixel is certainly background.
    whole = segmenter.segment(rgb, ObjectPrompt(box=(0.0, 0.0, 64.0, 48.0)))
    assert whole.shape == (48, 64)
    # Only negative points: nothing says foreground, so the mask is empty.
    neg = ObjectPrompt(points=np.array([[5.0, 5.0]], np.float32), labels=np.zeros(1, np.int64))
    assert not segmenter.segment(rgb, neg).any()
    # A 3x3 image is too small for GrabCut's colour models: the seeds are the answer.
    tiny = np.zeros((3, 3, 3), np.uint8)
    out = segmenter.segment(tiny, ObjectPrompt(box=(0.0, 0.0, 2.0, 2.0)))
    assert out.shape == (3, 3)
