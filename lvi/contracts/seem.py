"""Contract of the seem worker: interactive segmentation from clicks, boxes, strokes, text.

Coordinates are pixels of the image as sent (after EXIF orientation), in the continuous frame
``0 <= x <= width``, ``0 <= y <= height``. Masks come back as single-channel PNGs at the
image's full resolution.

How prompts combine (the worker documents and tests exactly this):

- no box: all points and the stroke describe **one** object;
- each box (given, or found by ``text``) is one object; a positive point or stroke pixel
  refines every box that contains it, negative points refine every box; positive points and
  stroke pixels that lie in no box make one more object;
- ``text`` goes through an open-vocabulary detector (Grounding DINO) to boxes, then to masks:
  every instance above the thresholds comes back, labelled with the phrase that found it. Text
  that matches nothing is not an error: the answer is 200 with no masks;
- ``everything`` ignores prompts and segments the whole image from a grid of points.

Semantic problems (no prompt, a point or box outside the image, ``x1 <= x0``, labels that do
not match the points, a stroke of the wrong size, blank text) are answered 400 with the error
envelope; the ``param`` field names the offending field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from lvi.images import Base64Image, Base64Mask

MAX_POINTS = 64
MAX_BOXES = 16
MAX_TEXT = 256
MAX_MASKS = 64

Coord = Annotated[float, Field(ge=-1e6, le=1e6)]
PointXY = Annotated[list[Coord], Field(min_length=2, max_length=2)]
BoxXYXY = Annotated[list[Coord], Field(min_length=4, max_length=4)]


class SegmentRequest(BaseModel):
    """Any combination of prompts; at least one of points, boxes, stroke or text (or
    ``everything``)."""

    model_config = ConfigDict(extra="forbid")

    image: Base64Image
    points: list[PointXY] = Field(
        default_factory=list, max_length=MAX_POINTS, description="[[x, y], ...] in pixels."
    )
    labels: list[Literal[0, 1]] | None = Field(
        None, description="1 = include, 0 = exclude; one per point (default: all 1)."
    )
    boxes: list[BoxXYXY] = Field(
        default_factory=list, max_length=MAX_BOXES, description="[[x0, y0, x1, y1], ...] in pixels."
    )
    stroke: Base64Mask | None = Field(
        None, description="A scribble mask (single-channel PNG), same size as the image."
    )
    text: str | None = Field(
        None,
        max_length=MAX_TEXT,
        description="Referring text. Several phrases may be separated by '.' ('cat. dog').",
    )
    multimask: bool = Field(
        False, description="Return every candidate mask of each object with its score."
    )
    merge: bool = Field(
        False, description="Return one mask: the union of every object's best mask."
    )
    everything: bool = Field(
        False, description="Segment everything (grid of point prompts, NMS); SAM backend only."
    )
    max_masks: int = Field(MAX_MASKS, ge=1, le=MAX_MASKS, description="Cap on masks returned.")
    dilate: int = Field(0, ge=0, le=256, description="Grow each mask by this many pixels.")
    erode: int = Field(0, ge=0, le=256, description="Shrink each mask (applied before dilate).")
    box_threshold: float = Field(
        0.3, ge=0.0, le=1.0, description="Text: minimum detector confidence of a box."
    )
    text_threshold: float = Field(
        0.25, ge=0.0, le=1.0, description="Text: minimum confidence that a box matches a phrase."
    )


class SegmentMask(BaseModel):
    """One mask. ``score`` is the model's: SAM's predicted IoU (times the detector's
    confidence for text matches); with GrabCut the detector's confidence for a text match,
    else ``None`` (GrabCut has no confidence); ``label`` is the phrase that found it, else
    ``object``."""

    mask: Base64Mask
    score: float | None = None
    bbox: list[int] = Field(description="[x0, y0, x1, y1], x1/y1 exclusive; zeros when empty.")
    area: int = Field(description="Pixels inside the mask.")
    label: str = "object"


class SegmentResponse(BaseModel):
    """Masks, best first (highest score first; unscored GrabCut masks in prompt order)."""

    masks: list[SegmentMask]
    width: int
    height: int
    backend: str = Field(description="'sam' or 'grabcut'.")
    cache_hit: bool = Field(False, description="The image embedding came from the cache.")
