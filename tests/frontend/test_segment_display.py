"""The selected-object view of a large photo is drawn at display size, not at 12 MP."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from frontend.handlers import Controller, ImageFiles, UiState
from frontend.handlers.segment import DISPLAY_MAX
from tests.frontend.fakes import FakeGateway
from tests.frontend.test_handlers import threaded


def photo(tmp_path: Path, size: tuple[int, int]) -> str:
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(arr).save(path, quality=90)
    return str(path)


@threaded
async def test_a_12_mp_selection_is_shown_at_display_size(tmp_path: Path) -> None:
    ctl = Controller(FakeGateway(), ImageFiles(tmp_path / "files"))
    loaded = await ctl.open(None)
    state, _ = await ctl.upload(loaded.state, photo(tmp_path, (4000, 3000)))
    assert (state.width, state.height) == (4000, 3000)
    state, view = await ctl.click(state, (2000, 1500), True)

    with Image.open(view.image) as shown:
        assert max(shown.size) == DISPLAY_MAX and shown.size == (1600, 1200)
    mask, label = view.annotations[0]
    assert isinstance(mask, np.ndarray) and mask.shape == (1200, 1600) and label
    # The clicked point is drawn where it was clicked, in display coordinates.
    marker, kind = view.annotations[1]
    assert kind == "include" and isinstance(marker, tuple)
    cx, cy = (marker[0] + marker[2]) / 2, (marker[1] + marker[3]) / 2
    assert abs(cx - 800) <= 1 and abs(cy - 600) <= 1
    # The selection itself (what edits use) keeps full-size coordinates.
    assert state.mask is not None and state.points == [[2000.0, 1500.0]]
    # The scaled copy is made once and reused.
    _, again = await ctl.click(
        UiState(**{**state.__dict__, "points": [], "labels": []}), (10, 10), True
    )
    assert again.image == view.image


@threaded
async def test_a_small_image_is_shown_as_it_is(tmp_path: Path) -> None:
    ctl = Controller(FakeGateway(), ImageFiles(tmp_path / "files"))
    loaded = await ctl.open(None)
    state, _ = await ctl.upload(loaded.state, photo(tmp_path, (640, 480)))
    state, view = await ctl.click(state, (100, 100), True)
    assert view.image == state.head_path
    mask, _ = view.annotations[0]
    assert isinstance(mask, np.ndarray) and mask.shape == (480, 640)
    with Image.open(io.BytesIO(Path(view.image).read_bytes())) as im:
        assert im.size == (640, 480)
