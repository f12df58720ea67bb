"""The gligen worker's backends by name (``GLIGEN_BACKEND``, else the profile's)."""

from __future__ import annotations

from lvi.worker import build_backend as _build
from services.gligen.backend import GligenBackend
from services.gligen.settings import GligenSettings

BACKENDS: dict[str, type[GligenBackend]] = {"diffusers": GligenBackend}
DEFAULT = "diffusers"


def build_backend(settings: GligenSettings) -> GligenBackend:
    """The backend ``settings.backend`` names; a ValueError listing the choices otherwise."""
    return _build(BACKENDS, settings, default=DEFAULT)
