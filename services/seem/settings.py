"""Settings of the seem worker (env prefix ``SEEM_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from lvi.settings import WorkerSettings, worker_config


class SeemSettings(WorkerSettings):
    """``SEEM_BACKEND`` is ``sam``, ``grabcut`` or ``auto`` (SAM when its weights are on this
    machine, else GrabCut); ``SEEM_MODEL`` the SAM / SAM-HQ checkpoint; ``SEEM_DETECTOR`` the
    Grounding DINO checkpoint that turns text into boxes (empty: text prompts are refused)."""

    model_config = worker_config("seem")
    worker: ClassVar[str] = "seem"

    detector: str | None = Field(
        None, description="Grounding DINO: hub id, local folder or 'tiny:grounding-dino'."
    )
    cache_size: int = Field(
        32, ge=0, le=4096, description="Image embeddings kept in the LRU cache (0: no cache)."
    )
    mask_threshold: float = Field(0.0, description="Logit above which a SAM pixel is inside.")
    stroke_points: int = Field(
        8, ge=1, le=64, description="Points sampled on a stroke as positive prompts."
    )
    stroke_box_margin: float = Field(
        0.1, ge=0.0, le=2.0, description="A stroke's box prompt is its bbox grown by this."
    )
    stroke_mask_prompt: bool = Field(
        True, description="Also give SAM the stroke as a low-resolution mask prompt."
    )
    text_nms_iou: float = Field(
        0.5, ge=0.0, le=1.0, description="Text boxes overlapping more than this are one object."
    )
    max_text_instances: int = Field(
        16, ge=1, le=64, description="Most instances one text prompt may return."
    )
    everything_points_per_side: int = Field(
        16, ge=2, le=64, description="Everything mode: grid of N x N point prompts."
    )
    everything_min_score: float = Field(
        0.85, ge=0.0, le=1.0, description="Everything mode: minimum predicted IoU."
    )
    everything_min_stability: float = Field(
        0.9, ge=0.0, le=1.0, description="Everything mode: minimum stability score."
    )
    everything_nms_iou: float = Field(
        0.7, ge=0.0, le=1.0, description="Everything mode: masks overlapping more are dupes."
    )
    grabcut_iterations: int = Field(5, ge=1, le=50, description="GrabCut iterations.")
    grabcut_max_side: int = Field(
        320,
        ge=64,
        le=8192,
        description=(
            "GrabCut works on the prompt's region shrunk to this side, then upsamples "
            "(smaller is faster and, on noisy photos, often better: see docs/BENCHMARKS.md)."
        ),
    )
    grabcut_context: float = Field(
        0.5, ge=0.0, le=4.0, description="Context around the prompt region, as a fraction."
    )
