"""Prompt checking and planning, shared by the SAM and GrabCut backends.

A request's points, boxes, stroke and text become a list of :class:`ObjectPrompt`: one per
object to segment, each with its own points, optional box and optional stroke. The rules are
in the contract's docstring (:mod:`lvi.contracts.seem`); they live here, in plain numpy, so
both backends agree on them and they can be tested without a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lvi.contracts.seem import SegmentRequest
from lvi.errors import BadRequest

Box = tuple[float, float, float, float]


@dataclass
class ObjectPrompt:
    """Everything known about one object: seeds in image pixels."""

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    box: Box | None = None
    stroke: np.ndarray | None = None  # HxW bool, full resolution
    label: str = "object"
    score: float | None = None  # detector confidence, for text matches

    @property
    def positives(self) -> np.ndarray:
        chosen: np.ndarray = self.points[self.labels == 1]
        return chosen

    @property
    def negatives(self) -> np.ndarray:
        chosen: np.ndarray = self.points[self.labels == 0]
        return chosen

    def has_positive_seed(self) -> bool:
        return self.box is not None or bool((self.labels == 1).any()) or self.stroke is not None


def split_phrases(text: str) -> list[str]:
    """'a cat. the dog.' -> ['a cat', 'the dog'] (lower case, blank pieces dropped)."""
    return [p.strip().lower() for p in text.split(".") if p.strip()]


def check_request(req: SegmentRequest, *, text_supported: bool, everything_supported: bool) -> None:
    """Refuse a semantically wrong request with a 400 naming the field (header-only: cheap).

    Runs before the request waits for a slot, so bad input never occupies the model.
    """
    w, h = req.image.width, req.image.height
    if req.labels is not None and len(req.labels) != len(req.points):
        raise BadRequest(
            f"labels has {len(req.labels)} entries but there are {len(req.points)} points; "
            "give one label per point (1 = include, 0 = exclude) or none.",
            param="labels",
            code="labels_mismatch",
        )
    for i, (x, y) in enumerate(req.points):
        if not (0 <= x <= w and 0 <= y <= h):
            raise BadRequest(
                f"Point {i} ({x:g}, {y:g}) is outside the {w}x{h} image.",
                param=f"points.{i}",
                code="point_outside_image",
            )
    for i, (x0, y0, x1, y1) in enumerate(req.boxes):
        if not (x1 > x0 and y1 > y0):
            raise BadRequest(
                f"Box {i} must have x1 > x0 and y1 > y0; got [{x0:g}, {y0:g}, {x1:g}, {y1:g}].",
                param=f"boxes.{i}",
                code="invalid_box",
            )
        if not (x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h):
            raise BadRequest(
                f"Box {i} [{x0:g}, {y0:g}, {x1:g}, {y1:g}] is outside the {w}x{h} image.",
                param=f"boxes.{i}",
                code="box_outside_image",
            )
    if req.stroke is not None and req.stroke.size != (w, h):
        sw, sh = req.stroke.size
        raise BadRequest(
            f"stroke is {sw}x{sh} but the image is {w}x{h}; the stroke must match the image.",
            param="stroke",
            code="stroke_size_mismatch",
        )
    if req.text is not None:
        if not split_phrases(req.text):
            raise BadRequest(
                "text is empty; give a phrase such as 'the red car', or leave text out.",
                param="text",
                code="empty_text",
            )
        if not text_supported:
            raise BadRequest(
                "Text prompts need the SAM backend with a Grounding DINO detector "
                "(SEEM_BACKEND=sam and SEEM_DETECTOR); this worker cannot read text. "
                "Use points, boxes or a stroke instead.",
                param="text",
                code="text_unsupported",
            )
    if req.everything:
        if not everything_supported:
            raise BadRequest(
                "everything mode needs the SAM backend (SEEM_BACKEND=sam).",
                param="everything",
                code="everything_unsupported",
            )
        return
    if not (req.points or req.boxes or req.stroke is not None or req.text is not None):
        raise BadRequest(
            "Give at least one prompt: points, boxes, a stroke or text (or everything=true).",
            code="no_prompt",
        )


def _inside(box: Box, xy: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = box
    return (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)


def box_region(box: Box, shape: tuple[int, ...]) -> np.ndarray:
    """Bool mask of the pixels a box touches."""
    region = np.zeros(shape[:2], bool)
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    region[y0 : int(np.ceil(box[3])), x0 : int(np.ceil(box[2]))] = True
    return region


def plan_objects(
    points: np.ndarray,
    labels: np.ndarray,
    boxes: list[Box],
    stroke: np.ndarray | None,
    *,
    box_labels: list[str] | None = None,
    box_scores: list[float | None] | None = None,
) -> list[ObjectPrompt]:
    """Group prompts into objects (see the module docstring of :mod:`lvi.contracts.seem`).

    ``stroke`` is a full-resolution bool mask or None (an empty stroke counts as none).
    """
    points = np.asarray(points, np.float32).reshape(-1, 2)
    labels = np.asarray(labels, np.int64).reshape(-1)
    if stroke is not None and not stroke.any():
        stroke = None
    if not boxes:
        if len(points) == 0 and stroke is None:
            return []
        return [ObjectPrompt(points=points, labels=labels, stroke=stroke)]

    box_labels = box_labels or ["object"] * len(boxes)
    box_scores = box_scores or [None] * len(boxes)
    pos = labels == 1
    neg_pts = points[~pos]
    objects: list[ObjectPrompt] = []
    claimed = np.zeros(len(points), bool)
    stroke_left = stroke.copy() if stroke is not None else None
    for box, label, score in zip(boxes, box_labels, box_scores, strict=True):
        mine = pos & _inside(box, points)
        claimed |= mine
        obj_pts = np.concatenate([points[mine], neg_pts])
        obj_lbl = np.concatenate([np.ones(int(mine.sum()), np.int64), np.zeros(len(neg_pts))])
        obj_stroke = None
        if stroke is not None and stroke_left is not None:
            inner = box_region(box, stroke.shape)
            part = stroke & inner
            if part.any():
                obj_stroke = part
                stroke_left &= ~inner
        objects.append(
            ObjectPrompt(
                points=obj_pts.astype(np.float32),
                labels=obj_lbl.astype(np.int64),
                box=box,
                stroke=obj_stroke,
                label=label,
                score=score,
            )
        )
    free = pos & ~claimed
    if free.any() or (stroke_left is not None and stroke_left.any()):
        extra_pts = np.concatenate([points[free], neg_pts])
        extra_lbl = np.concatenate([np.ones(int(free.sum()), np.int64), np.zeros(len(neg_pts))])
        objects.append(
            ObjectPrompt(
                points=extra_pts.astype(np.float32),
                labels=extra_lbl.astype(np.int64),
                stroke=stroke_left if stroke_left is not None and stroke_left.any() else None,
            )
        )
    return objects


def sample_stroke_points(stroke: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` points spread along a stroke (farthest-point sampling), as (x, y) floats.

    Starts from the stroke pixel nearest the stroke's centroid, so a scribble's middle is always
    a seed, then adds the pixel farthest from all chosen ones: the seeds cover the whole stroke.
    """
    ys, xs = np.nonzero(stroke)
    if len(xs) == 0:
        return np.zeros((0, 2), np.float32)
    pix = np.stack([xs, ys], 1).astype(np.float32)
    if len(pix) > 20000:  # a huge stroke: a regular subsample keeps this O(n * 20k)
        pix = pix[:: len(pix) // 20000 + 1]
    c = pix.mean(0)
    first = int(np.argmin(((pix - c) ** 2).sum(1)))
    chosen = [first]
    dist = ((pix - pix[first]) ** 2).sum(1)
    for _ in range(min(n, len(pix)) - 1):
        nxt = int(np.argmax(dist))
        if dist[nxt] <= 0:
            break
        chosen.append(nxt)
        dist = np.minimum(dist, ((pix - pix[nxt]) ** 2).sum(1))
    return pix[chosen] + 0.5  # pixel centres


def stroke_box(stroke: np.ndarray, margin: float) -> Box:
    """The stroke's bbox grown by ``margin`` times its size on each side, clipped."""
    ys, xs = np.nonzero(stroke)
    h, w = stroke.shape
    x0, x1, y0, y1 = float(xs.min()), float(xs.max() + 1), float(ys.min()), float(ys.max() + 1)
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    return max(0.0, x0 - mx), max(0.0, y0 - my), min(float(w), x1 + mx), min(float(h), y1 + my)


# -- mask helpers --------------------------------------------------------------------------


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a`` (N, 4) and ``b`` (M, 4), xyxy."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms_boxes(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression: indices kept, best score first."""
    order = list(np.argsort(-np.asarray(scores), kind="stable"))
    ious = box_iou(boxes, boxes)
    keep: list[int] = []
    for i in order:
        if all(ious[i, j] <= iou for j in keep):
            keep.append(int(i))
    return keep


def nms_masks(masks: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy NMS on masks (N, H, W) bool by mask IoU: indices kept, best score first."""
    n = len(masks)
    if n == 0:
        return []
    flat = masks.reshape(n, -1).astype(np.float32)
    inter = flat @ flat.T
    area = flat.sum(1)
    union = area[:, None] + area[None, :] - inter
    ious = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    keep: list[int] = []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        if all(ious[i, j] <= iou for j in keep):
            keep.append(int(i))
    return keep
