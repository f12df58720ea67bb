"""The seem worker's backends by name (``SEEM_BACKEND``, else the profile's)."""

from __future__ import annotations

from lvi.worker import build_backend as _build
from services.seem.backend import AutoBackend, GrabCutBackend, SamBackend, SeemBackend
from services.seem.settings import SeemSettings

BACKENDS: dict[str, type[SeemBackend]] = {
    "sam": SamBackend,
    "grabcut": GrabCutBackend,
    "auto": AutoBackend,
}
DEFAULT = "grabcut"


def build_backend(settings: SeemSettings) -> SeemBackend:
    """The backend ``settings.backend`` names; a ValueError listing the choices otherwise."""
    return _build(BACKENDS, settings, default=DEFAULT)
