"""The gligen worker's backend registry (``GLIGEN_BACKEND``)."""

from __future__ import annotations

import pytest

from services.gligen.backend import GligenBackend
from services.gligen.backends import BACKENDS, build_backend
from services.gligen.settings import GligenSettings


def test_diffusers_is_the_one_backend_and_others_are_refused() -> None:
    assert {"diffusers": GligenBackend} == BACKENDS
    backend = build_backend(GligenSettings(profile="tiny"))
    assert type(backend) is GligenBackend and backend.name == "diffusers"
    with pytest.raises(ValueError, match="GLIGEN_BACKEND must be one of 'diffusers', not 'onnx'"):
        build_backend(GligenSettings(profile="tiny", backend="onnx"))
