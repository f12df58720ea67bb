"""Contract of the gligen worker: grounded generation and grounded inpainting.

Boxes are normalised ``[x0, y0, x1, y1]`` in 0..1 of the output (or input) image. With an
``image`` the request is grounded inpainting: only the boxes (or ``mask``) change and every
other pixel is returned unchanged, at the input's full resolution.

With ``Accept: text/event-stream`` the worker streams ``event: progress`` (data
:class:`Progress`) per denoising step, then ``event: result`` (data :class:`GenerateResponse`)
or ``event: error`` (data: the error envelope).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from lvi.images import Base64Image, Base64Mask

MAX_BOXES = 30  # the diffusers GLIGEN pipeline's limit
MAX_PROMPT = 2000
MAX_PHRASE = 200

NormCoord = Annotated[float, Field(ge=0.0, le=1.0)]
NormBox = Annotated[list[NormCoord], Field(min_length=4, max_length=4)]


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field("", max_length=MAX_PROMPT)
    phrases: list[Annotated[str, Field(min_length=1, max_length=MAX_PHRASE)]] = Field(
        default_factory=list, max_length=MAX_BOXES
    )
    boxes: list[NormBox] = Field(default_factory=list, max_length=MAX_BOXES)
    image: Base64Image | None = Field(None, description="Input image: grounded inpainting.")
    mask: Base64Mask | None = Field(None, description="Restrict the change to this mask.")
    steps: int = Field(25, ge=1, le=150)
    guidance_scale: float = Field(7.5, ge=0.0, le=50.0)
    scheduled_sampling_beta: float = Field(0.3, ge=0.0, le=1.0)
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    width: int = Field(512, ge=64, le=2048, multiple_of=8)
    height: int = Field(512, ge=64, le=2048, multiple_of=8)


class Progress(BaseModel):
    step: int
    total: int


class GenerateResponse(BaseModel):
    image: Base64Image
    width: int
    height: int
    seed: int = Field(description="The seed used (random when none was given).")
    steps: int
    mode: str = Field(description="'generate' or 'inpaint'.")
    region: list[int] | None = Field(
        None, description="Inpainting: [x0, y0, x1, y1] of the pixels that may have changed."
    )
