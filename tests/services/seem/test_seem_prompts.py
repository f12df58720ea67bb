"""Prompt checking and planning, mask helpers and the embedding cache: plain unit tests."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from support.imaging import b64, png_bytes, scene

from lvi.contracts.seem import SegmentRequest
from lvi.errors import BadRequest
from lvi.masks import mask_bbox, morph
from services.seem.cache import EmbeddingCache
from services.seem.prompts import (
    box_iou,
    check_request,
    nms_boxes,
    nms_masks,
    plan_objects,
    sample_stroke_points,
    split_phrases,
    stroke_box,
)

W, H = 80, 60
IMAGE = b64(png_bytes(scene(W, H)))


def req(**kw: object) -> SegmentRequest:
    return SegmentRequest.model_validate({"image": IMAGE, **kw})


def check(r: SegmentRequest, text: bool = True, everything: bool = True) -> None:
    check_request(r, text_supported=text, everything_supported=everything)


@pytest.mark.parametrize(
    ("kw", "code", "param"),
    [
        ({}, "no_prompt", None),
        ({"points": [[10, 10]], "labels": [1, 0]}, "labels_mismatch", "labels"),
        ({"points": [[10, 10]], "labels": []}, "labels_mismatch", "labels"),
        ({"points": [[W + 1, 10]]}, "point_outside_image", "points.0"),
        ({"points": [[5, 5], [10, -1]]}, "point_outside_image", "points.1"),
        ({"boxes": [[30, 10, 20, 40]]}, "invalid_box", "boxes.0"),
        ({"boxes": [[10, 10, 10, 40]]}, "invalid_box", "boxes.0"),
        ({"boxes": [[10, 10, 20, 20], [0, 0, W, H + 5]]}, "box_outside_image", "boxes.1"),
        ({"boxes": [[-3, 0, 20, 20]]}, "box_outside_image", "boxes.0"),
        ({"text": ""}, "empty_text", "text"),
        ({"text": "  . . "}, "empty_text", "text"),
        (
            {"stroke": b64(png_bytes(np.zeros((H, W + 1), np.uint8)))},
            "stroke_size_mismatch",
            "stroke",
        ),
    ],
)
def test_bad_prompts_are_400_with_the_field(kw: dict[str, object], code: str, param: str) -> None:
    with pytest.raises(BadRequest) as e:
        check(req(**kw))
    assert e.value.status == 400 and e.value.code == code and e.value.param == param


def test_good_prompts_pass_and_capabilities_are_checked() -> None:
    check(req(points=[[0, 0], [W, H]], labels=[1, 0], boxes=[[0, 0, W, H]], text="a cat"))
    check(req(everything=True))  # no prompt needed
    with pytest.raises(BadRequest) as e:
        check(req(text="a cat"), text=False)
    assert e.value.code == "text_unsupported" and "SAM" in e.value.message
    with pytest.raises(BadRequest) as e:
        check(req(everything=True), everything=False)
    assert e.value.code == "everything_unsupported"


def test_split_phrases() -> None:
    assert split_phrases("A Cat. the dog.") == ["a cat", "the dog"]
    assert split_phrases(" . ") == []


def test_plan_without_boxes_is_one_object() -> None:
    stroke = np.zeros((H, W), bool)
    stroke[20:22, 10:30] = True
    objs = plan_objects(np.array([[5, 5], [50, 50]]), np.array([1, 0]), [], stroke)
    assert len(objs) == 1
    assert objs[0].box is None and objs[0].stroke is stroke
    assert objs[0].labels.tolist() == [1, 0]
    # An empty stroke counts as no stroke; no prompt at all plans nothing.
    assert plan_objects(np.zeros((0, 2)), np.zeros(0), [], np.zeros((H, W), bool)) == []


def test_plan_assigns_points_and_stroke_to_boxes() -> None:
    boxes = [(0.0, 0.0, 30.0, 30.0), (40.0, 0.0, 70.0, 30.0)]
    points = np.array([[10, 10], [50, 10], [75, 50], [20, 20]], np.float32)
    labels = np.array([1, 1, 1, 0])
    stroke = np.zeros((H, W), bool)
    stroke[5, 45:55] = True  # inside box 1
    stroke[50, 5:15] = True  # in no box
    objs = plan_objects(
        points, labels, boxes, stroke, box_labels=["cat", "dog"], box_scores=[0.9, 0.8]
    )
    assert [o.label for o in objs] == ["cat", "dog", "object"]
    a, b, extra = objs
    # Box 0: its own positive point plus every negative; no stroke pixels inside it.
    assert a.positives.tolist() == [[10, 10]] and a.negatives.tolist() == [[20, 20]]
    assert a.stroke is None and a.score == 0.9
    assert b.positives.tolist() == [[50, 10]] and b.stroke is not None
    assert b.stroke.sum() == 10 and b.stroke[5, 45:55].all()
    # Unclaimed positives and stroke pixels make one more object (with the negatives).
    assert extra.box is None and extra.positives.tolist() == [[75, 50]]
    assert extra.stroke is not None and extra.stroke[50, 5:15].all() and extra.stroke.sum() == 10


def test_stroke_points_cover_the_stroke() -> None:
    stroke = np.zeros((H, W), bool)
    stroke[30, 10:70] = True
    pts = sample_stroke_points(stroke, 5)
    assert pts.shape == (5, 2)
    assert np.all(stroke[pts[:, 1].astype(int), pts[:, 0].astype(int)])
    assert pts[:, 0].min() < 15 and pts[:, 0].max() > 65  # both ends are seeds
    assert sample_stroke_points(stroke, 500).shape[0] == 60  # never more than its pixels
    assert stroke_box(stroke, 0.0) == (10.0, 30.0, 70.0, 31.0)
    assert stroke_box(stroke, 0.5)[0] == 0.0  # clipped to the image


def test_morph_bbox_and_nms() -> None:
    m = np.zeros((H, W), bool)
    m[20:30, 20:40] = True
    assert mask_bbox(m) == (20, 20, 40, 30)
    assert mask_bbox(np.zeros((H, W), bool)) is None
    assert mask_bbox(morph(m, 0, 3)) == (17, 17, 43, 33)
    assert mask_bbox(morph(m, 2, 0)) == (22, 22, 38, 28)
    assert not morph(m, 6, 0).any()  # eroded away: dilate after has nothing to grow
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], float)
    assert box_iou(boxes[:1], boxes[1:]).round(2).tolist() == [[0.81, 0.0]]
    assert nms_boxes(boxes, np.array([0.5, 0.9, 0.1]), 0.5) == [1, 2]
    masks = np.stack([m, morph(m, 0, 1), np.roll(m, 30, axis=1)])
    assert nms_masks(masks, np.array([0.2, 0.8, 0.5]), 0.7) == [1, 2]
    assert nms_masks(np.zeros((0, 4, 4), bool), np.zeros(0), 0.5) == []


def test_embedding_cache_is_an_lru_with_counters() -> None:
    cache: EmbeddingCache[str] = EmbeddingCache(2)
    reg = CollectorRegistry()
    cache.bind_metrics(reg)
    calls: list[str] = []

    def compute(v: str) -> str:
        calls.append(v)
        return v.upper()

    assert cache.get_or_compute("a", lambda: compute("a")) == ("A", False)
    assert cache.get_or_compute("a", lambda: compute("a")) == ("A", True)
    cache.get_or_compute("b", lambda: compute("b"))
    cache.get_or_compute("a", lambda: compute("a"))  # a is now the most recent
    cache.get_or_compute("c", lambda: compute("c"))  # evicts b
    assert cache.get("b") is None and cache.get("a") == "A" and len(cache) == 2
    assert calls == ["a", "b", "c"]
    text = generate_latest(reg).decode()
    assert "lvi_seem_embedding_cache_hits_total 2.0" in text
    assert "lvi_seem_embedding_cache_misses_total 3.0" in text
    assert "lvi_seem_embedding_cache_items 2.0" in text
    off: EmbeddingCache[str] = EmbeddingCache(0)
    off.get_or_compute("a", lambda: "A")
    assert off.get_or_compute("a", lambda: "A") == ("A", False)
