"""Model profiles: which model each worker loads under ``LVI_PROFILE`` (tiny, cpu, gpu, gpu-16gb,
local).

``local`` is tiny with the classical backends where a worker has one (seem: GrabCut, text
through the tiny Grounding DINO; inpaint: OpenCV): what ``lvi up``'s default ``auto`` resolves
to on a machine without a CUDA GPU or without the gpu profile's weights
(:mod:`launcher.autoprofile`).

``gpu-16gb`` is ``gpu`` with LLaVA in 4-bit (NF4, ``LLAVA_QUANTIZATION=4bit``), so the whole
stack fits one 16 GB card (docs/DEPLOY.md, "One card, all workers").

Every value can be overridden per worker by its own setting (``INPAINT_MODEL``,
``LLAVA_MODEL``, ...). A model reference is one of:

- a Hugging Face hub id (``llava-hf/llava-1.5-7b-hf``), or ``hf://<repo>/<file>`` for one file;
- a local folder or file;
- ``tiny:<name>``: a tiny random-weight model built locally by :mod:`lvi.tiny` into
  ``$LVI_CACHE_DIR/tiny`` on first use (tests and offline machines).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lvi.errors import ServiceUnavailable
from lvi.registry import PROFILE_NAMES, WORKERS, profile_row

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    w.name: {profile: profile_row(w, profile) for profile in PROFILE_NAMES} for w in WORKERS
}
"""worker -> profile -> settings field -> value, from :mod:`lvi.registry`. Workers read their
own row."""


class ModelUnavailable(ServiceUnavailable):
    """A configured model is neither local nor downloadable. The message names the way out."""

    code = "model_unavailable"


def profile_defaults(worker: str, profile: str) -> dict[str, Any]:
    """The settings that ``profile`` gives ``worker`` (a copy; empty for an unknown pair)."""
    return dict(PROFILES.get(worker, {}).get(profile, {}))


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` says the hub must not be contacted."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def resolve_model(ref: str, cache_dir: Path, *, worker: str) -> str:
    """Turn a model reference into something ``from_pretrained``/``torch.jit.load`` accepts.

    Hub ids are returned as they are (transformers and diffusers resolve them against the
    Hugging Face cache, honouring ``HF_HUB_OFFLINE``); ``hf://repo/file`` is fetched (or found
    in the cache) as one file; ``tiny:<name>`` is built on first use.
    """
    if ref.startswith("tiny:"):
        from lvi import tiny

        return str(tiny.ensure(ref.removeprefix("tiny:"), cache_dir / "tiny"))
    if ref.startswith("hf://"):
        repo_file = ref.removeprefix("hf://")
        parts = repo_file.split("/")
        if len(parts) < 3:
            raise ValueError(f"hf:// reference must be hf://<owner>/<repo>/<file>: {ref}")
        repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
        try:
            from huggingface_hub import hf_hub_download

            return hf_hub_download(repo, filename)
        except Exception as e:
            raise missing_model(ref, worker, e) from e
    local = Path(ref).expanduser()
    if local.exists() or ref.startswith(("/", "./", "../", "~")):
        if not local.exists():
            raise missing_model(ref, worker, FileNotFoundError(ref))
        return str(local)
    return ref


def missing_model(ref: str, worker: str, cause: BaseException | None = None) -> ModelUnavailable:
    why = f" ({type(cause).__name__}: {cause})" if cause else ""
    return ModelUnavailable(
        f"Model '{ref}' for the {worker} worker is not available on this machine{why}. "
        "Download it with `lvi models pull` (needs access to the Hugging Face hub), point "
        f"{worker.upper()}_MODEL at a local copy, or run with LVI_PROFILE=tiny "
        "(random weights, for trying the stack offline)."
    )
