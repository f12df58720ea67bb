"""The llava worker's backends by name (``LLAVA_BACKEND``, else the profile's).

``transformers`` runs the model in this process; ``openai`` forwards to an OpenAI-compatible
server (vLLM, SGLang, TGI) under this worker's contract and admission control.
"""

from __future__ import annotations

from collections.abc import Callable

from lvi.worker import build_backend as _build
from services.llava.backend import LlavaBackend
from services.llava.settings import LlavaSettings
from services.llava.upstream import OpenAIUpstream

LlavaBackends = LlavaBackend | OpenAIUpstream

BACKENDS: dict[str, Callable[[LlavaSettings], LlavaBackends]] = {
    "transformers": LlavaBackend,
    "openai": OpenAIUpstream,
}
DEFAULT = "transformers"


def build_backend(settings: LlavaSettings) -> LlavaBackends:
    """The backend ``settings.backend`` names; a ValueError listing the choices otherwise."""
    return _build(BACKENDS, settings, default=DEFAULT)
