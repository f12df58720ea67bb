"""The llava worker's backend registry (``LLAVA_BACKEND``): in-process or an upstream."""

from __future__ import annotations

import pytest

from services.llava.backend import LlavaBackend
from services.llava.backends import BACKENDS, build_backend
from services.llava.settings import LlavaSettings
from services.llava.upstream import OpenAIUpstream


def test_each_name_builds_its_class_and_others_are_refused() -> None:
    assert {"transformers": LlavaBackend, "openai": OpenAIUpstream} == BACKENDS
    assert type(build_backend(LlavaSettings(profile="tiny"))) is LlavaBackend
    upstream = build_backend(
        LlavaSettings(profile="tiny", backend="openai", upstream_url="http://127.0.0.1:9/v1")
    )
    assert type(upstream) is OpenAIUpstream
    with pytest.raises(
        ValueError, match="LLAVA_BACKEND must be one of 'transformers', 'openai', not 'vllm'"
    ):
        build_backend(LlavaSettings(profile="tiny", backend="vllm"))
