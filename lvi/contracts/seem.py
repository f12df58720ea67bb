"""Contract of the seem worker: interactive segmentation from clicks, boxes, strokes, text.

Coordinates are pixels of the image as sent (after EXIF orientation). Masks come back as
single-channel PNGs at the image's full resolution.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from lvi.images import Base64Image, Base64Mask

MAX_POINTS = 64
MAX_BOXES = 16
MAX_TEXT = 256

Coord = Annotated[float, Field(ge=-1e6, le=1e6)]
PointXY = Annotated[list[Coord], Field(min_length=2, max_length=2)]
BoxXYXY = Annotated[list[Coord], Field(min_length=4, max_length=4)]


class SegmentRequest(BaseModel):
    """Any combination of prompts; at least one of points, boxes, stroke or text."""

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
    stroke: Base64Mask | None = Field(None, description="A scribble mask, same size as image.")
    text: str | None = Field(None, max_length=MAX_TEXT, description="Referring text.")
    multimask: bool = Field(False, description="Return every candidate mask, best first.")
    dilate: int = Field(0, ge=0, le=256)
    erode: int = Field(0, ge=0, le=256)
    box_threshold: float = Field(0.3, ge=0.0, le=1.0)
    text_threshold: float = Field(0.25, ge=0.0, le=1.0)


class SegmentMask(BaseModel):
    mask: Base64Mask
    score: float
    bbox: list[int] = Field(description="[x0, y0, x1, y1], x1/y1 exclusive.")
    area: int
    label: str = "object"


class SegmentResponse(BaseModel):
    masks: list[SegmentMask]
    width: int
    height: int
    backend: str
    cache_hit: bool = Field(False, description="The image embedding came from the cache.")
