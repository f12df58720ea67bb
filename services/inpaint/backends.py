"""The inpaint worker's backends by name (``INPAINT_BACKEND``, else the profile's)."""

from __future__ import annotations

from lvi.worker import build_backend as _build
from services.inpaint.backend import InpaintBackend, LamaBackend, OpenCVBackend
from services.inpaint.settings import InpaintSettings

BACKENDS: dict[str, type[InpaintBackend]] = {"lama": LamaBackend, "opencv": OpenCVBackend}
DEFAULT = "opencv"


def build_backend(settings: InpaintSettings) -> InpaintBackend:
    """The backend ``settings.backend`` names; a ValueError listing the choices otherwise."""
    return _build(BACKENDS, settings, default=DEFAULT)
