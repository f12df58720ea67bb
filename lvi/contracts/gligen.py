"""Contract of the gligen worker: grounded generation and grounded inpainting.

``POST /v1/generate`` takes a :class:`GenerateRequest`.

- Without ``image`` it is grounded generation: a new ``width`` x ``height`` image from the
  prompt, with each phrase placed in its box. Boxes are optional here.
- With ``image`` it is grounded inpainting: at least one box; each box is regenerated from its
  phrase and every pixel outside the boxes (intersected with ``mask`` when one is given) comes
  back bit-identical, at the input's full resolution.

Boxes are normalised ``[x0, y0, x1, y1]`` in 0..1 of the output image (generation) or of the
input image as sent (inpainting), with ``x0 < x1`` and ``y0 < y1``.

Replies: plain JSON (:class:`GenerateResponse`) by default. With ``Accept: text/event-stream``
the reply is a stream of server-sent events, each ``data`` one JSON object:

=============  =====================================  ========================================
``event``      ``data``                               when
=============  =====================================  ========================================
``start``      :class:`Started`                       once, when the run got its slot
``progress``   :class:`Progress`                      once per denoising step (``total`` times)
``result``     :class:`GenerateResponse`              last event of a successful run
``error``      the error envelope ``{"error": ...}``  last event of a failed run
=============  =====================================  ========================================

Errors found before the run starts (bad input, a full queue, a corrupt image) are not
streamed: they come back as an ordinary error response with their 4xx status, even when a
stream was asked for. A client that closes the stream cancels the run within one step.
:func:`parse_event` turns one received event back into its model.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lvi.errors import ErrorEnvelope
from lvi.images import Base64Image, Base64Mask
from lvi_client.models import MAX_BOXES, MAX_PHRASE, MAX_PROMPT

MAX_STEPS = 150
MAX_SIDE = 2048  # hard bound of the contract; a worker may set a lower one (GLIGEN_MAX_SIDE)
MIN_SIDE = 64

NormCoord = Annotated[float, Field(ge=0.0, le=1.0)]
NormBox = Annotated[list[NormCoord], Field(min_length=4, max_length=4)]
Phrase = Annotated[str, Field(min_length=1, max_length=MAX_PHRASE)]
Side = Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE, multiple_of=8)]

Mode = Literal["generate", "inpaint"]

EVENT_START = "start"
EVENT_PROGRESS = "progress"
EVENT_RESULT = "result"
EVENT_ERROR = "error"


class GenerateRequest(BaseModel):
    """One generation or grounded-inpainting run. Unset numbers take the worker's defaults."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field("", max_length=MAX_PROMPT, description="Caption of the whole image.")
    phrases: list[Phrase] = Field(
        default_factory=list, max_length=MAX_BOXES, description="One phrase per box."
    )
    boxes: list[NormBox] = Field(
        default_factory=list,
        max_length=MAX_BOXES,
        description="Normalised [x0, y0, x1, y1] boxes, one per phrase.",
    )
    image: Base64Image | None = Field(None, description="Input image: grounded inpainting.")
    mask: Base64Mask | None = Field(
        None,
        description="Inpainting only: restrict the change to this mask (same size as image); "
        "pixels change only inside both a box and the mask.",
    )
    steps: int | None = Field(
        None, ge=1, le=MAX_STEPS, description="Denoising steps; unset: the worker's default."
    )
    guidance_scale: float = Field(7.5, ge=0.0, le=50.0)
    scheduled_sampling_beta: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Fraction of the steps that use the grounding boxes. Unset: 0.3 for "
        "generation and 1.0 for inpainting, as in the original demo.",
    )
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT)
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Unset: a random seed.")
    width: Side | None = Field(
        None, description="Generation only (multiple of 8); unset: the model's native size."
    )
    height: Side | None = Field(
        None, description="Generation only (multiple of 8); unset: the model's native size."
    )
    append_phrases: bool = Field(
        True, description="Append the phrases to the caption ('caption; a; b'), as the demo did."
    )

    @model_validator(mode="after")
    def _consistent(self) -> GenerateRequest:
        if len(self.phrases) != len(self.boxes):
            raise ValueError(
                f"phrases and boxes must have the same length; got {len(self.phrases)} "
                f"phrases and {len(self.boxes)} boxes"
            )
        for i, (x0, y0, x1, y1) in enumerate(self.boxes):
            if not (x0 < x1 and y0 < y1):
                raise ValueError(f"boxes[{i}] must have x0 < x1 and y0 < y1 (a non-empty area)")
        if self.image is None:
            if self.mask is not None:
                raise ValueError("mask needs an image (it restricts grounded inpainting)")
            if not self.prompt.strip() and not self.phrases:
                raise ValueError("generation needs a prompt or at least one phrase")
        else:
            if not self.boxes:
                raise ValueError("inpainting needs at least one box with its phrase")
            if self.mask is not None and self.mask.size != self.image.size:
                raise ValueError(
                    f"mask is {self.mask.size[0]}x{self.mask.size[1]} but the image is "
                    f"{self.image.width}x{self.image.height}"
                )
            for name, value, full in (
                ("width", self.width, self.image.width),
                ("height", self.height, self.image.height),
            ):
                if value is not None and value != full:
                    raise ValueError(
                        f"{name} applies to generation; inpainting keeps the input's size "
                        f"({self.image.width}x{self.image.height})"
                    )
        return self

    @property
    def mode(self) -> Mode:
        return "inpaint" if self.image is not None else "generate"


class Started(BaseModel):
    """First streamed event: the run has its slot; says what it will do."""

    mode: Mode
    seed: int
    total: int = Field(description="Number of progress events that will follow.")
    width: int
    height: int


class Progress(BaseModel):
    """One denoising step done (``step`` counts from 1 to ``total``)."""

    step: int
    total: int


class GenerateResponse(BaseModel):
    """The result image, at the requested size (generation) or the input's size (inpainting)."""

    image: Base64Image
    width: int
    height: int
    seed: int = Field(description="The seed used (random when none was given).")
    steps: int
    mode: Mode = Field(description="'generate' or 'inpaint'.")
    scheduled_sampling_beta: float = Field(description="The beta used.")
    region: list[int] | None = Field(
        None, description="Inpainting: [x0, y0, x1, y1) of the pixels that may have changed."
    )
    crop: list[int] | None = Field(
        None,
        description="Inpainting: [x0, y0, x1, y1) of the square the model saw (may reach "
        "outside the image, which was then padded by reflection).",
    )


StreamEvent = Started | Progress | GenerateResponse | ErrorEnvelope


def parse_event(event: str, data: str) -> StreamEvent:
    """Turn one received server-sent event (its ``event`` and ``data`` fields) into its model."""
    payload = json.loads(data)
    if event == EVENT_START:
        return Started.model_validate(payload)
    if event == EVENT_PROGRESS:
        return Progress.model_validate(payload)
    if event == EVENT_RESULT:
        return GenerateResponse.model_validate(payload)
    if event == EVENT_ERROR:
        return ErrorEnvelope.model_validate(payload)
    raise ValueError(f"unknown gligen stream event {event!r}")
