"""The backend in-process: SAM-HQ, SAM without a detector, and how ``auto`` picks a backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.imaging import b64, png_bytes, scene

from lvi.contracts.seem import SegmentRequest
from lvi.errors import BadRequest
from lvi.worker import Cancelled, Job
from services.seem.backend import SeemBackend
from services.seem.backends import build_backend
from services.seem.settings import SeemSettings

IMAGE = b64(png_bytes(scene(120, 80, seed=9)))


def loaded(**settings: object) -> SeemBackend:
    backend = build_backend(SeemSettings(**settings))  # type: ignore[arg-type]
    backend.load()
    backend.warmup()
    return backend


def run(backend: SeemBackend, **kw: object) -> list[tuple[int, int]]:
    out = backend.segment(SegmentRequest.model_validate({"image": IMAGE, **kw}), Job())
    return [m.mask.size for m in out.masks]


def test_sam_hq_checkpoint_without_detector(lvi_cache: Path) -> None:
    backend = loaded(profile="tiny", model="tiny:sam-hq", detector="")
    info = backend.info()
    assert info["sam_hq"] is True and info["detector"] is None
    assert "text" not in info["prompts"]
    assert run(backend, points=[[10, 10]]) == [(120, 80)]
    assert (
        run(backend, boxes=[[5, 5, 60, 60], [70, 10, 110, 70]], multimask=True) == [(120, 80)] * 6
    )
    with pytest.raises(BadRequest) as e:
        run(backend, text="a cat")
    assert e.value.code == "text_unsupported"


def test_auto_uses_sam_when_its_weights_are_here(lvi_cache: Path) -> None:
    backend = loaded(profile="cpu", backend="auto", model="tiny:sam", detector="/nonexistent")
    info = backend.info()
    # SAM loads; the missing detector only turns text off.
    assert info["backend"] == "sam" and info["detector"] is None
    assert run(backend, points=[[10, 10]]) == [(120, 80)]


def test_auto_falls_back_to_grabcut_without_weights(lvi_cache: Path) -> None:
    backend = loaded(profile="cpu", backend="auto", model="/nonexistent/sam")
    assert backend.info()["backend"] == "grabcut"
    assert run(backend, boxes=[[10, 10, 60, 40]]) == [(120, 80)]
    # An explicit SAM backend never falls back: a missing model fails the load loudly.
    with pytest.raises(Exception, match="nonexistent"):
        build_backend(SeemSettings(profile="tiny", backend="sam", model="/nonexistent/sam")).load()
    with pytest.raises(ValueError, match="SEEM_BACKEND must be one of 'sam', 'grabcut', 'auto'"):
        build_backend(SeemSettings(backend="magic"))


def test_a_cancelled_job_stops(lvi_cache: Path) -> None:
    backend = loaded(profile="cpu", backend="grabcut")
    job = Job()
    job.cancel_event.set()
    req = SegmentRequest.model_validate({"image": IMAGE, "boxes": [[10, 10, 60, 40]]})
    with pytest.raises(Cancelled):
        backend.segment(req, job)


def test_the_local_row_is_grabcut_with_text_through_the_tiny_detector(lvi_cache: Path) -> None:
    backend = loaded(profile="local")
    info = backend.info()
    assert info["backend"] == "grabcut" and info["model"] == "grabcut"
    assert info["detector"] and "text" in info["prompts"] and "everything" not in info["prompts"]
    out = backend.segment(
        SegmentRequest.model_validate(
            {"image": IMAGE, "text": "a cat", "box_threshold": 0.0, "text_threshold": 0.0}
        ),
        Job(),
    )
    assert out.backend == "grabcut" and out.masks  # the detector's boxes, cut by GrabCut
    assert all(m.label == "a cat" and m.score is not None for m in out.masks)


def test_explicit_grabcut_without_a_local_detector_refuses_text(
    lvi_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cpu row names a hub detector; GrabCut never downloads it, so text stays off.
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    backend = loaded(profile="cpu", backend="grabcut")
    assert backend.info()["detector"] is None
    with pytest.raises(BadRequest) as e:
        run(backend, text="a cat")
    assert e.value.code == "text_unsupported"
