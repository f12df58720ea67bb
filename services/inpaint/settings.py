"""Settings of the inpaint worker (env prefix ``INPAINT_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from lvi.settings import WorkerSettings, worker_config


class InpaintSettings(WorkerSettings):
    """``INPAINT_BACKEND`` is ``lama`` or ``opencv``; ``INPAINT_MODEL`` the LaMa TorchScript file."""

    model_config = worker_config("inpaint")
    worker: ClassVar[str] = "inpaint"

    radius: int = Field(5, ge=1, le=64, description="OpenCV inpainting radius.")
    context: float = Field(
        1.0, ge=0, le=8, description="Context around the mask bbox, as a fraction of its size."
    )
    min_context: int = Field(64, ge=0, le=4096, description="Minimum context in pixels.")
    lama_max_side: int = Field(
        1024,
        ge=64,
        le=8192,
        description="Crops larger than this are shrunk for LaMa, then upscaled.",
    )
