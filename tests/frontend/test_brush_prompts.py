"""The mask brush, prompts one kind at a time, click markers, unused phrases and the version
each chat turn was about: the UI's logic over the fake gateway (fast, no browser)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from frontend.app import create_app
from frontend.handlers import (
    ChatParams,
    Controller,
    DiffusionParams,
    ImageFiles,
    UiState,
    chat_history,
)
from frontend.handlers.brush import combine_masks, decode_mask, lost_background
from frontend.handlers.inputs import boxes_and_phrases, painted_mask, unused_phrases
from tests.frontend.fakes import FakeGateway
from tests.frontend.test_handlers import PARK, threaded

BALL = {"image": None, "boxes": [{"xmin": 330, "ymin": 280, "xmax": 420, "ymax": 370}]}


async def _selected(ctl: Controller) -> UiState:
    """A session with the park uploaded and the ball's box segmented (640x448)."""
    loaded = await ctl.open(None)
    state, _ = await ctl.upload(loaded.state, PARK)
    state, _ = await ctl.segment(state, box_value=BALL, text="ball")
    return state


def _strokes(width: int, height: int, box: tuple[int, int, int, int]) -> dict[str, Any]:
    """An ``ImageEditor`` value with one painted rectangle on its layer."""
    layer = np.zeros((height, width, 4), np.uint8)
    x0, y0, x1, y1 = box
    layer[y0:y1, x0:x1] = (245, 158, 11, 255)
    return {"background": np.zeros((height, width, 4), np.uint8), "layers": [layer]}


def _mask(fake: FakeGateway, state: UiState) -> np.ndarray:
    assert state.session_id and state.mask
    png = fake.sessions[state.session_id].masks[state.mask["mask_id"]][1]
    return decode_mask(png, state.width, state.height)


# -- pure helpers ---------------------------------------------------------------------------
def test_combine_masks_adds_and_erases() -> None:
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    strokes = np.zeros((4, 4), bool)
    strokes[1:3, :2] = True
    assert combine_masks(mask, strokes, "add").sum() == 8 + 2
    erased = combine_masks(mask, strokes, "erase")
    assert erased.sum() == 8 - 2 and not erased[1, :2].any()
    with pytest.raises(gr.Error, match="Unknown brush mode"):
        combine_masks(mask, strokes, "smudge")


def test_painted_mask_is_the_images_size() -> None:
    value = _strokes(10, 8, (2, 2, 5, 4))
    painted = painted_mask(value, 20, 16)  # a canvas of another size is scaled
    assert painted is not None and painted.shape == (16, 20) and painted.sum() == 6 * 4
    assert painted_mask({"layers": [np.zeros((8, 10, 4), np.uint8)]}, 10, 8) is None


def test_lost_background() -> None:
    head = np.full((4, 4, 4), 255, np.uint8)
    assert not lost_background({"background": head, "layers": []})
    assert lost_background({"background": None, "layers": []}) and lost_background(None)
    assert lost_background({"background": np.zeros((4, 4, 4), np.uint8), "layers": []})


def test_phrases_pair_with_boxes_in_drawing_order() -> None:
    # The annotator prepends each new box: "first; second" must go to the first box drawn.
    value = {
        "image": None,
        "boxes": [
            {"xmin": 400, "ymin": 200, "xmax": 560, "ymax": 360, "label": ""},  # drawn second
            {"xmin": 20, "ymin": 20, "xmax": 120, "ymax": 120, "label": ""},  # drawn first
        ],
    }
    boxes, phrases = boxes_and_phrases(value, "first; second")
    assert boxes == [[20, 20, 120, 120], [400, 200, 560, 360]]
    assert phrases == ["first", "second"]


def test_unused_phrases_are_named() -> None:
    boxes = {
        "image": None,
        "boxes": [  # newest first, as the annotator lists them
            {"xmin": 5, "ymin": 5, "xmax": 50, "ymax": 60, "label": "a hat"},
            {"xmin": 1, "ymin": 1, "xmax": 9, "ymax": 9, "label": ""},
        ],
    }
    # the second listed phrase falls on the labelled box; the third on no box at all
    assert unused_phrases(boxes, "a cat; a dog; a boat") == ["a dog", "a boat"]
    assert unused_phrases(boxes, "a cat") == []
    assert unused_phrases(None, "a cat") == ["a cat"]


# -- the brush ------------------------------------------------------------------------------
@threaded
async def test_brush_adds_to_the_mask_and_selects_it(ctl: Controller, fake: FakeGateway) -> None:
    state = await _selected(ctl)
    before = _mask(fake, state)
    assert before.sum() == 90 * 90
    # Paint a strip to the right of the ball, partly over it.
    state, view = await ctl.brush_mask(state, _strokes(640, 448, (400, 300, 460, 320)), "add")
    assert fake.calls[-1] == ("upload_mask", {"version": state.head})
    after = _mask(fake, state)
    assert after.sum() == 90 * 90 + 40 * 20 and (after | before).sum() == after.sum()
    assert state.mask and state.mask["source"] == "upload" and state.mask["bbox"][2] == 460
    assert state.mask["label"] == "ball"  # still the object the user selected
    assert view.label == "ball" and view.bbox == [330, 280, 460, 370]
    assert ctl.move_box(state)["boxes"][0]["xmax"] == 460  # type: ignore[index]
    # the edits use the painted mask from now on
    await ctl.remove(state, 0)
    assert fake.calls[-1][1]["mask_id"] == state.mask["mask_id"]


@threaded
async def test_brush_erases_from_the_mask(ctl: Controller, fake: FakeGateway) -> None:
    state = await _selected(ctl)
    state, _ = await ctl.brush_mask(state, _strokes(640, 448, (330, 280, 375, 370)), "erase")
    after = _mask(fake, state)
    assert after.sum() == 45 * 90 and not after[280:370, 330:375].any()


@threaded
async def test_brush_refuses_what_would_make_no_sense(ctl: Controller) -> None:
    loaded = await ctl.open(None)
    state, _ = await ctl.upload(loaded.state, PARK)
    with pytest.raises(gr.Error, match="Select an object first"):
        await ctl.brush_mask(state, _strokes(640, 448, (0, 0, 10, 10)), "add")
    state = await _selected(ctl)
    with pytest.raises(gr.Error, match="Paint over the image"):
        await ctl.brush_mask(state, {"background": None, "layers": []}, "add")
    with pytest.raises(gr.Error, match="erase the whole mask"):
        await ctl.brush_mask(state, _strokes(640, 448, (300, 250, 450, 400)), "erase")
    with pytest.raises(gr.Error, match="changed nothing"):
        await ctl.brush_mask(state, _strokes(640, 448, (340, 290, 350, 300)), "add")


@threaded
async def test_brush_canvas_tints_the_selected_mask(ctl: Controller) -> None:
    loaded = await ctl.open(None)
    state, _ = await ctl.upload(loaded.state, PARK)
    assert await ctl.brush_view(state) == state.head_path  # no object: the plain head
    state = await _selected(ctl)
    path = await ctl.brush_view(state)
    assert path and path != state.head_path
    assert path == await ctl.brush_view(state)  # made once per mask
    head = np.asarray(Image.open(str(state.head_path)).convert("RGB"), np.int16)
    tinted = np.asarray(Image.open(path).convert("RGB"), np.int16)
    assert tinted.shape == head.shape
    inside = np.abs(tinted[300:350, 340:400] - head[300:350, 340:400]).mean()
    outside = np.abs(tinted[10:60, 10:60] - head[10:60, 10:60]).mean()
    assert inside > 20 and outside < 5


# -- prompts one kind at a time ---------------------------------------------------------------
@threaded
async def test_a_new_prompt_kind_clears_the_old_one(ctl: Controller, fake: FakeGateway) -> None:
    loaded = await ctl.open(None)
    state, _ = await ctl.upload(loaded.state, PARK)
    state, cleared = ctl.start_prompt(state, "click")
    assert cleared == frozenset()  # the first prompt on this head: nothing to clear
    state, _ = await ctl.click(state, [375, 325], True)
    state, _ = await ctl.click(state, [100, 100], False)
    same, cleared = ctl.start_prompt(state, "click")
    assert same is state and cleared == frozenset()  # more clicks: they add up
    state, cleared = ctl.start_prompt(state, "box")
    assert cleared == {"click", "stroke", "text"}
    assert state.points == [] and state.labels == [] and state.prompt_kind == "box"
    state, _ = await ctl.segment(state, box_value=BALL)
    assert "points" not in fake.calls[-1][1] or fake.calls[-1][1]["points"] is None
    state, cleared = ctl.start_prompt(state, "text")
    assert cleared == {"click", "box", "stroke"}
    assert ctl.clear_prompts(state).prompt_kind is None
    # a new head forgets the kind with the prompts
    state, _ = await ctl.upload(state, PARK)
    assert state.prompt_kind is None
    with pytest.raises(ValueError):
        ctl.start_prompt(state, "lasso")  # type: ignore[arg-type]


@threaded
async def test_clicks_are_drawn_where_the_user_clicked(ctl: Controller) -> None:
    loaded = await ctl.open(None)
    state, _ = await ctl.upload(loaded.state, PARK)
    assert ctl.click_view(state) == state.head_path
    state, _ = await ctl.click(state, [375, 325], True)
    state, _ = await ctl.click(state, [100, 100], False)
    path = ctl.click_view(state)
    assert path and path != state.head_path
    drawn = np.asarray(Image.open(path).convert("RGB"), np.int16)
    assert drawn.shape[:2] == (448, 640)  # the head's size: clicks stay in image pixels
    green, red = drawn[325, 375], drawn[100, 100]
    assert green[1] > 120 and green[0] < 80 and green[2] < 120, green
    assert red[0] > 180 and red[1] < 80, red


# -- phrases and chat ---------------------------------------------------------------------------
@threaded
async def test_an_unused_phrase_is_a_warning(ctl: Controller, fake: FakeGateway) -> None:
    loaded = await ctl.open(None)
    state, _ = await ctl.upload(loaded.state, PARK)
    one_box = {"image": None, "boxes": [{"xmin": 10, "ymin": 10, "xmax": 60, "ymax": 60}]}
    with pytest.warns(UserWarning, match="Not used, no box for it: 'a hat'"):
        await ctl.inpaint(state, one_box, "a cat; a hat", None, DiffusionParams())
    assert fake.calls[-1][1]["phrases"] == ["a cat"]


@threaded
async def test_chat_turns_say_which_version_they_were_about(
    ctl: Controller, fake: FakeGateway
) -> None:
    loaded = await ctl.open(None)
    state, _ = await ctl.upload(loaded.state, PARK)
    state, _ = await ctl.upload(state, PARK)
    seen = [h async for h in ctl.chat(state, "what is it?", [], ChatParams())]
    assert seen[-1][0] == {"role": "user", "content": "what is it?\n\n*(on v2)*"}
    assert state.session_id
    session = await fake.get_session(state.session_id)
    stored = chat_history(session)
    assert stored[0]["content"].endswith("*(on v2)*")
    assert "(on v" not in stored[1]["content"]  # the reply is not marked


def test_the_page_has_the_brush_and_its_api(fake: FakeGateway, tmp_path: Path) -> None:
    demo = create_app(client=fake, files=ImageFiles(tmp_path / "files"))
    config = demo.get_config_file()
    ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
    assert {"mask-brush", "mask-brush-mode", "mask-brush-apply", "head-editor-restore"} <= ids
    names = {d.get("api_name") for d in config["dependencies"]}
    assert "brush_mask" in names
