"""Settings of the gligen worker (env prefix ``GLIGEN_``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from lvi.contracts.gligen import MAX_SIDE, MAX_STEPS, MIN_SIDE
from lvi.settings import WorkerSettings, worker_config

SchedulerName = Literal["dpm++", "pndm", "ddim", "euler", "euler_a", "unipc"]


class GligenSettings(WorkerSettings):
    """``GLIGEN_MODEL`` is the generation checkpoint, ``GLIGEN_INPAINT_MODEL`` the inpainting one.

    Each is a hub id, a local diffusers pipeline folder, ``tiny:<name>``, or ``none`` to leave
    that mode off (saves its memory; requests for it get a 400).
    """

    model_config = worker_config("gligen")
    worker: ClassVar[str] = "gligen"

    inpaint_model: str | None = Field(
        default=None, description="Inpainting checkpoint; unset: the profile's choice."
    )
    scheduler: SchedulerName = Field(
        "dpm++",
        description="Sampler. The original demo used PLMS ('pndm') with 50 steps; DPM-Solver++ "
        "(2M) reaches comparable quality in about 25 steps, so it is the default.",
    )
    default_steps: int = Field(25, ge=1, le=MAX_STEPS, description="Steps when a request has none.")
    max_side: int = Field(
        1024,
        ge=MIN_SIDE,
        le=MAX_SIDE,
        description="Largest generation width/height (SD-1.4 composes poorly far above 512).",
    )
    context: float = Field(
        0.5,
        ge=0.0,
        le=8.0,
        description="Inpainting: context around the boxes on each side, as a fraction of their size.",
    )
    min_crop: int = Field(
        0,
        ge=0,
        le=8192,
        description="Inpainting: smallest crop side in pixels; 0 means the model's native size, "
        "so a small edit is made at 1:1 scale with the surroundings as context.",
    )
    feather: int = Field(
        4, ge=0, le=64, description="Inpainting: edge softening inside the edited region (px)."
    )
    warmup_steps: int = Field(2, ge=1, le=50, description="Steps of each warm-up run.")
