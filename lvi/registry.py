"""The worker registry: every model worker named once, with everything that identifies it.

One :class:`WorkerSpec` row per worker. Everything else is derived from this table: the
profiles (:data:`lvi.profiles.PROFILES`), the launcher's ports and component table, the ``lvi``
command's choices, ``lvi models pull``, the tiny-model builders (:mod:`lvi.tiny`) and the
gateway's worker names and skills. Apps, settings classes and builders are import strings
(``"module:attr"``): the kernel never imports a worker, the launcher does, on demand.

Adding a worker: its folder ``services/<name>/`` (``app.py``, ``settings.py``, backend,
``tiny.py``), one row here, and its deployment entries (README, "The worker registry", lists
every file).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ProfileRows = Mapping[str, Mapping[str, Any]]
"""profile (tiny, cpu, gpu, ...) -> settings field -> value (see :data:`PROFILE_BASES`)."""


@dataclass(frozen=True)
class WorkerSpec:
    """One model worker: name, where it listens, how to build and configure it."""

    name: str
    port: int  # default port
    env_prefix: str  # its settings' env prefix, without the underscore (``INPAINT``)
    app: str  # app factory ``create_app(settings)``, as ``"module:function"``
    settings: str  # settings class, as ``"module:Class"``
    skill: str  # what the gateway calls it in errors ("chat is unavailable")
    gateway_timeout_s: float  # the gateway's default timeout of one call (GATEWAY_<NAME>_TIMEOUT_S)
    profiles: ProfileRows = field(hash=False)
    tiny: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Tiny model name (``tiny:<name>``) -> builder ``"module:function"``."""
    model_fields: tuple[str, ...] = ()
    """Settings fields, besides ``model`` and ``*_model``, that hold a model reference."""


WORKERS: tuple[WorkerSpec, ...] = (
    WorkerSpec(
        name="llava",
        port=8101,
        env_prefix="LLAVA",
        app="services.llava.app:create_app",
        settings="services.llava.settings:LlavaSettings",
        skill="chat",
        gateway_timeout_s=180.0,
        profiles={
            "tiny": {"backend": "transformers", "model": "tiny:llava"},
            # The smallest real LLaVA: Qwen-0.5B language model, multi-image trained.
            "cpu": {
                "backend": "transformers",
                "model": "llava-hf/llava-interleave-qwen-0.5b-hf",
                "image_policy": "all",
            },
            "gpu": {"backend": "transformers", "model": "llava-hf/llava-1.5-7b-hf"},
            # The whole stack on one 16 GB card (T4): LLaVA's language model in NF4.
            "gpu-16gb": {"quantization": "4bit"},
        },
        tiny={
            "llava": "services.llava.tiny:build_llava",
            "llava-next": "services.llava.tiny:build_llava_next",
        },
    ),
    # seem: SAM for visual prompts + Grounding DINO for text. cpu's "auto" uses SAM ViT-B when
    # its weights are already on the machine (`lvi models pull`) and GrabCut otherwise.
    WorkerSpec(
        name="seem",
        port=8102,
        env_prefix="SEEM",
        app="services.seem.app:create_app",
        settings="services.seem.settings:SeemSettings",
        skill="segmentation",
        gateway_timeout_s=60.0,
        profiles={
            "tiny": {"backend": "sam", "model": "tiny:sam", "detector": "tiny:grounding-dino"},
            "cpu": {
                "backend": "auto",
                "model": "facebook/sam-vit-base",
                "detector": "IDEA-Research/grounding-dino-tiny",
            },
            "gpu": {
                "backend": "sam",
                "model": "facebook/sam-vit-huge",
                "detector": "IDEA-Research/grounding-dino-base",
            },
            # GrabCut for clicks, boxes and strokes; text through tiny's (random) detector.
            "local": {"backend": "grabcut", "model": None},
        },
        tiny={
            "sam": "services.seem.tiny:build_sam",
            "sam-hq": "services.seem.tiny:build_sam_hq",
            "grounding-dino": "services.seem.tiny:build_grounding_dino",
        },
        model_fields=("detector",),
    ),
    # GLIGEN has no smaller real checkpoint than SD-1.4: cpu runs the real ones in fp32 (slow).
    WorkerSpec(
        name="gligen",
        port=8103,
        env_prefix="GLIGEN",
        app="services.gligen.app:create_app",
        settings="services.gligen.settings:GligenSettings",
        skill="generation",
        gateway_timeout_s=600.0,
        profiles={
            "tiny": {
                "backend": "diffusers",
                "model": "tiny:gligen-generation",
                "inpaint_model": "tiny:gligen-inpainting",
            },
            "cpu": {
                "backend": "diffusers",
                "model": "masterful/gligen-1-4-generation-text-box",
                "inpaint_model": "masterful/gligen-1-4-inpainting-text-box",
            },
            "gpu": {
                "backend": "diffusers",
                "model": "masterful/gligen-1-4-generation-text-box",
                "inpaint_model": "masterful/gligen-1-4-inpainting-text-box",
            },
        },
        tiny={
            "gligen-generation": "services.gligen.tiny:build_gligen_generation",
            "gligen-inpainting": "services.gligen.tiny:build_gligen_inpainting",
        },
    ),
    WorkerSpec(
        name="inpaint",
        port=8104,
        env_prefix="INPAINT",
        app="services.inpaint.app:create_app",
        settings="services.inpaint.settings:InpaintSettings",
        skill="inpainting",
        gateway_timeout_s=120.0,
        profiles={
            "tiny": {"backend": "lama", "model": "tiny:lama"},
            "cpu": {"backend": "opencv", "model": None},
            "gpu": {"backend": "lama", "model": "hf://fashn-ai/LaMa/big-lama.pt"},
            "local": {"backend": "opencv", "model": None},
        },
        tiny={"lama": "services.inpaint.tiny:build_lama"},
    ),
)
"""Every model worker, in the order the stack lists them."""

BY_NAME: Mapping[str, WorkerSpec] = {w.name: w for w in WORKERS}
WORKER_NAMES: tuple[str, ...] = tuple(w.name for w in WORKERS)
PROFILE_NAMES: tuple[str, ...] = ("tiny", "cpu", "gpu", "gpu-16gb", "local")
"""The concrete profiles: each gives every worker one settings row."""
PROFILE_BASES: Mapping[str, str] = {"gpu-16gb": "gpu", "local": "tiny"}
"""A derived profile starts from its base's row; a worker's own row for it only overrides.
``local`` is tiny with the classical backends where a worker has one (GrabCut, OpenCV fill):
what a machine without weights runs by default."""
AUTO_PROFILE = "auto"
"""Not a row: ``lvi up`` resolves it at start into ``gpu`` (CUDA and the gpu profile's weights
cached) or ``local`` (:mod:`launcher.autoprofile`)."""
LAUNCH_PROFILES: tuple[str, ...] = (AUTO_PROFILE, *PROFILE_NAMES)
"""What ``lvi up --profile`` accepts."""
RANDOM_PROFILES: frozenset[str] = frozenset({"tiny", "local"})
"""Profiles whose learned models have random weights: a worker under one of them gives
meaningless outputs unless its backend is a classical one (no weights at all)."""


def profile_row(spec: WorkerSpec, profile: str) -> dict[str, Any]:
    """``spec``'s settings for ``profile``: its base profile's row, then its own row on top."""
    base = PROFILE_BASES.get(profile)
    row = profile_row(spec, base) if base else {}
    row.update(spec.profiles.get(profile, {}))
    return row


def get(name: str) -> WorkerSpec:
    """The row of worker ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown worker '{name}'; known: {', '.join(WORKER_NAMES)}") from None


def tiny_builders() -> dict[str, str]:
    """Every tiny model name -> its builder's import string, over all workers."""
    return {model: ref for w in WORKERS for model, ref in w.tiny.items()}


def load(ref: str) -> Any:
    """Import ``"module:attr"`` and return the attribute."""
    module, sep, attr = ref.partition(":")
    if not sep:
        raise ValueError(f"not a 'module:attr' import string: {ref!r}")
    return getattr(importlib.import_module(module), attr)
