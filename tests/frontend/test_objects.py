"""Issue 14: the removal preview and several objects at once, through the handlers over the
fake gateway (no browser, no servers)."""

from __future__ import annotations

import io
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from frontend.app import create_app
from frontend.handlers import Controller, DiffusionParams, ImageFiles, UiState
from frontend.handlers.instances import (
    chosen_instances,
    instance_choices,
    instance_label,
    mask_ref,
    selection,
)
from tests.frontend.fakes import FakeGateway
from tests.frontend.test_handlers import PARK, threaded

BALL = {"xmin": 330, "ymin": 280, "xmax": 420, "ymax": 370}
LEFT = {"xmin": 40, "ymin": 240, "xmax": 120, "ymax": 320}
TWO_BOXES = {"image": None, "boxes": [BALL, LEFT]}


async def _with_image(ctl: Controller) -> UiState:
    loaded = await ctl.open(None)
    state, _ = await ctl.upload(loaded.state, PARK)
    return state


def _pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# -- pure helpers ---------------------------------------------------------------------------
def test_instance_labels_and_selection() -> None:
    a = {"mask_id": "a", "label": "person", "score": 0.873, "bbox": [10, 20, 30, 40], "area": 5}
    b = {"mask_id": "b", "label": None, "score": None, "bbox": [0, 30, 15, 90], "area": 7}
    assert instance_label(0, a) == "#1 person 0.87"
    assert instance_label(1, b) == "#2 object"  # GrabCut: no score claimed
    assert instance_choices([a, b]) == [("#1 person 0.87", "a"), ("#2 object", "b")]
    assert chosen_instances([a, b], ["b", "gone"]) == [b]

    one = selection([a])
    assert one == a and mask_ref(one) == "a"
    both = selection([a, b])
    assert both is not None and mask_ref(both) == ["a", "b"]
    assert both["bbox"] == [0, 20, 30, 90]  # the box around both: what Move drags
    assert both["area"] is None and both["score"] is None
    assert both["label"] == "2 objects (person, object)"
    assert selection([]) is None


# -- several objects ------------------------------------------------------------------------
@threaded
async def test_two_boxes_give_two_instances_all_chosen(ctl: Controller, fake: FakeGateway) -> None:
    state = await _with_image(ctl)
    state, view = await ctl.segment(state, box_value=TWO_BOXES)
    assert fake.calls[-1][1]["merge"] is False
    assert len(state.instances) == 2 and state.chosen == [m["mask_id"] for m in state.instances]
    picker = ctl.instances_view(state)
    assert picker.visible and [label for label, _ in picker.choices] == [
        "#1 object 0.90",
        "#2 object 0.90",
    ]
    assert picker.chosen == state.chosen
    # The mask shown is the union of both; the summary says so.
    mask, label = view.annotations[0]
    assert isinstance(mask, np.ndarray)
    assert mask[300, 350] and mask[260, 60] and not mask[50, 600]
    assert label.startswith("2 objects") and "2 objects" in view.summary
    assert state.mask is not None and state.mask["bbox"] == [40, 240, 420, 370]

    # Uncheck one: the selection is the other alone (as one instance behaves).
    first, second = state.chosen
    state, view = await ctl.choose(state, [second])
    assert state.chosen == [second] and state.mask is not None
    assert state.mask["mask_id"] == second and "mask_ids" not in state.mask
    mask, _ = view.annotations[0]
    assert isinstance(mask, np.ndarray) and mask[260, 60] and not mask[300, 350]
    # Uncheck both: nothing selected, the edits ask for an object.
    state, view = await ctl.choose(state, [])
    assert state.mask is None and view.annotations == [] and "check at least one" in view.summary
    with pytest.raises(gr.Error, match="Select an object"):
        await ctl.remove(state, 10)
    state, _ = await ctl.choose(state, [second, first])
    assert state.chosen == [first, second]  # the segmenter's order, whatever the click order


@threaded
async def test_remove_move_replace_act_on_every_chosen_instance(
    ctl: Controller, fake: FakeGateway
) -> None:
    state = await _with_image(ctl)
    state, _ = await ctl.segment(state, box_value=TWO_BOXES)
    ids = list(state.chosen)
    after, head = await ctl.remove(state, 6)
    op, kw = fake.calls[-1]
    assert op == "remove" and kw["mask_id"] == ids and kw["dilate"] == 6
    assert after.head == 2 and after.instances == [] and after.chosen == []
    removed = _pixels(head.image or "")
    assert (removed[300, 350] == 128).all() and (removed[260, 60] == 128).all()

    dragged = {"image": None, "boxes": [{"xmin": 60, "ymin": 250, "xmax": 440, "ymax": 380}]}
    await ctl.move(state, dragged, None, 4, DiffusionParams())
    op, kw = fake.calls[-1]
    assert op == "move" and kw["mask_id"] == ids and (kw["dx"], kw["dy"]) == (20, 10)

    await ctl.replace_object(state, "a cat", False, DiffusionParams())
    op, kw = fake.calls[-1]
    assert op == "replace" and kw["mask_id"] == ids


@threaded
async def test_one_instance_behaves_as_before(ctl: Controller, fake: FakeGateway) -> None:
    state = await _with_image(ctl)
    state, _ = await ctl.segment(state, box_value={"image": None, "boxes": [BALL]})
    assert len(state.instances) == 1 and not ctl.instances_view(state).visible
    assert state.mask is not None and "mask_ids" not in state.mask
    await ctl.remove(state, 10)
    assert isinstance(fake.calls[-1][1]["mask_id"], str)
    # Clearing the prompts forgets the instances too.
    cleared = ctl.clear_prompts(state)
    assert cleared.mask is None and cleared.instances == [] and cleared.chosen == []


# -- removal preview ------------------------------------------------------------------------
@threaded
async def test_preview_commits_nothing_then_keep_commits_once(
    ctl: Controller, fake: FakeGateway
) -> None:
    state = await _with_image(ctl)
    with pytest.raises(gr.Error, match="Select an object"):
        await ctl.preview_remove(state, 10)
    state, _ = await ctl.segment(state, box_value=TWO_BOXES)
    sid = state.session_id or ""
    shown = await ctl.preview_remove(state, 20)
    op, kw = fake.calls[-1]
    assert op == "remove_preview" and kw == {
        "mask_id": state.chosen,
        "dilate": 20,
        "if_match": 1,
    }
    assert shown is not None
    assert shown.dilate == 20 and "not saved" in shown.caption and "v1" in shown.caption
    filled = _pixels(shown.image)
    assert (filled[300, 350] == 148).all() and (filled[260, 60] == 148).all()
    # Another dilation: another fill, still no version.
    again = await ctl.preview_remove(state, 40)
    assert again is not None
    assert again.image != shown.image and (_pixels(again.image)[300, 350] == 168).all()
    session = await fake.get_session(sid)
    assert session.head == 1 and len(session.versions) == 1

    # Keep: the ordinary remove with the preview's dilation: one new version.
    state, head = await ctl.remove(state, again.dilate)
    assert fake.calls[-1][0] == "remove" and fake.calls[-1][1]["dilate"] == 40
    assert state.head == 2 and len(head.gallery) == 2


@threaded
async def test_no_preview_of_a_head_moved_elsewhere(ctl: Controller, fake: FakeGateway) -> None:
    stale = await _with_image(ctl)
    stale, _ = await ctl.segment(stale, box_value={"image": None, "boxes": [BALL]})
    await ctl.upload(stale, PARK)  # another tab moved the head to v2
    # Not an error (the next edit refreshes the tab): no preview, and a warning.
    with pytest.warns(UserWarning, match="changed in another tab"):
        assert await ctl.preview_remove(stale, 10) is None
    assert fake.calls[-1][0] == "remove_preview"
    assert len(fake.sessions[stale.session_id or ""].versions) == 2


def test_the_edit_tab_has_the_object_panels(fake: FakeGateway, tmp_path: Path) -> None:
    demo = create_app(client=fake, files=ImageFiles(tmp_path))
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {
        "instances",
        "remove-preview-panel",
        "remove-preview",
        "remove-preview-info",
        "preview-keep-btn",
        "preview-discard-btn",
    } <= ids
    # The public API is unchanged: the preview and the picker are UI-only events.
    names = {d.api_name for d in demo.fns.values() if d.api_visibility == "public"}
    assert "segment" in names and "remove" in names
    assert not any(n and ("preview" in n or "choose" in n) for n in names)


def test_mask_png_union_is_exact() -> None:
    from frontend.handlers.objects import _union_png
    from tests.frontend.fakes import png

    a = np.zeros((4, 4), np.uint8)
    b = np.zeros((4, 4), np.uint8)
    a[0, 0], b[3, 3] = 255, 255
    union = np.asarray(Image.open(io.BytesIO(_union_png([png(a), png(b)]))))
    assert union[0, 0] and union[3, 3] and union.sum() == 2 * 255
