"""Contract of the inpaint worker: background filling and compositing.

``POST /v1/inpaint`` fills the masked region of an image; every pixel outside the (dilated)
mask is returned bit-identical. ``POST /v1/composite`` pastes the masked pixels of a source
image at an offset onto a target image (feathered), which is how ``move`` keeps an object's
own pixels; it lives here so that no pixel work lands in the gateway.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lvi.images import EXAMPLE_MASK_B64, EXAMPLE_PNG_B64, Base64Image, Base64Mask

InpaintMethod = Literal["auto", "lama", "telea", "ns"]

MAX_DILATE = 256
MAX_OFFSET = 16384


class InpaintRequest(BaseModel):
    """Fill ``mask`` (same size as ``image``) after dilating it by ``dilate`` pixels."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"image": EXAMPLE_PNG_B64, "mask": EXAMPLE_MASK_B64, "dilate": 1}]
        },
    )

    image: Base64Image
    mask: Base64Mask
    dilate: int = Field(0, ge=0, le=MAX_DILATE, description="Dilation radius in pixels.")
    method: InpaintMethod = Field(
        "auto", description="'auto' uses the worker's backend (LaMa if loaded, else Telea)."
    )

    @model_validator(mode="after")
    def _mask_matches(self) -> InpaintRequest:
        if self.mask.size != self.image.size:
            raise ValueError(
                f"mask is {self.mask.size[0]}x{self.mask.size[1]} but the image is "
                f"{self.image.width}x{self.image.height}"
            )
        return self


class InpaintResponse(BaseModel):
    """The filled image at the input's full resolution."""

    image: Base64Image
    width: int
    height: int
    method: str = Field(description="The method that ran ('none' when the mask was empty).")
    mask_area: int = Field(description="Pixels filled (after dilation).")
    region: list[int] | None = Field(
        None, description="[x0, y0, x1, y1] of the crop the model saw (None when nothing ran)."
    )


class CompositeRequest(BaseModel):
    """Paste the pixels of ``source`` under ``mask`` onto ``image``, shifted by (dx, dy)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "image": EXAMPLE_PNG_B64,
                    "source": EXAMPLE_PNG_B64,
                    "mask": EXAMPLE_MASK_B64,
                    "dx": 2,
                    "dy": -1,
                }
            ]
        },
    )

    image: Base64Image = Field(description="The target (e.g. the background after removal).")
    source: Base64Image = Field(description="Where the object's pixels come from.")
    mask: Base64Mask = Field(description="The object in ``source`` coordinates.")
    dx: int = Field(0, ge=-MAX_OFFSET, le=MAX_OFFSET)
    dy: int = Field(0, ge=-MAX_OFFSET, le=MAX_OFFSET)
    feather: int = Field(2, ge=0, le=64, description="Edge softening in pixels.")

    @model_validator(mode="after")
    def _sizes_match(self) -> CompositeRequest:
        if self.mask.size != self.source.size:
            raise ValueError("mask must be the size of source")
        if self.source.size != self.image.size:
            raise ValueError("source and image must be the same size")
        return self


class CompositeResponse(BaseModel):
    """The composited image and where the pasted object landed."""

    image: Base64Image
    width: int
    height: int
    bbox: list[int] | None = Field(
        None, description="[x0, y0, x1, y1] of the pasted object, None if it left the frame."
    )
    mask: Base64Mask | None = Field(None, description="The object's mask at its new place.")
