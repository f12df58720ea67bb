"""The inpaint worker's backend registry: one class per ``INPAINT_BACKEND`` name."""

from __future__ import annotations

import pytest

from services.inpaint.backend import LamaBackend, OpenCVBackend
from services.inpaint.backends import BACKENDS, build_backend
from services.inpaint.settings import InpaintSettings


def test_each_name_builds_its_class() -> None:
    assert {"lama": LamaBackend, "opencv": OpenCVBackend} == BACKENDS
    opencv = build_backend(InpaintSettings(profile="cpu"))  # the cpu profile's row: opencv
    assert type(opencv) is OpenCVBackend and opencv.info()["backend"] == "opencv"
    lama = build_backend(InpaintSettings(profile="cpu", backend="lama", model="/x.pt"))
    assert type(lama) is LamaBackend and lama.name == "lama"
    opencv.load()  # OpenCV needs no weights
    assert opencv.info()["methods"] == ["telea", "ns"]


def test_an_unknown_name_lists_the_choices() -> None:
    with pytest.raises(
        ValueError, match="INPAINT_BACKEND must be one of 'lama', 'opencv', not 'x'"
    ):
        build_backend(InpaintSettings(profile="cpu", backend="x"))


def test_lama_without_a_model_fails_the_load() -> None:
    backend = build_backend(InpaintSettings(profile="cpu", backend="lama", model=None))
    with pytest.raises(ValueError, match="INPAINT_MODEL"):
        backend.load()
