"""Issue 14 in Chromium against the real stack (tiny profile): a removal previewed before it
is kept, and two objects chosen and removed in one edit.

The session is checked through the gateway's API afterwards (the newest session of the UI's
key): the preview committed nothing, Keep committed exactly one version with the previewed
dilation, and the two-object removal names both masks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from lvi_client import LviClient
from lvi_client.models import Session
from tests.frontend.conftest import API_KEY, ROOT, UiStack
from tests.frontend.test_browser import SLOW, Ui

pytestmark = pytest.mark.slow
PARK = ROOT / "frontend" / "examples" / "park.png"
SIZE = (640, 448)  # the red ball is at (330..420, 280..370)


def _newest_session(stack: UiStack) -> Session:
    """The session the UI just changed: the newest of the UI key's sessions."""
    with LviClient(stack.gateway.url, api_key=API_KEY) as client:
        page = client.list_sessions(limit=1)
        assert page.sessions, "the UI's session is not listed"
        return client.get_session(page.sessions[0].id)


def _start(page: Page, stack: UiStack, artifacts: Path) -> Ui:
    ui = Ui(page, artifacts)
    page.goto(stack.frontend.url)
    ui.summary("No image yet")
    page.locator("#upload-btn >> xpath=.. >> input[type=file]").set_input_files(str(PARK))
    ui.summary("v1 of 1 · upload")
    return ui


def test_remove_preview_then_keep(page: Page, ui_stack: UiStack, artifacts: Path) -> None:
    ui_stack.require("seem", "inpaint")
    ui = _start(page, ui_stack, artifacts)

    # Selecting an object shows what removing it would leave, at the slider's dilation.
    ui.draw_box("#seg-box", SIZE, (325, 275, 425, 375))
    page.locator("#segment-btn").click()
    ui.wait_text("#mask-info", "score")
    expect(page.locator("#instances")).to_be_hidden()  # one object: no list to pick from
    panel = page.locator("#remove-preview-panel")
    expect(panel).to_be_visible(timeout=SLOW)
    ui.wait_text("#remove-preview-info", "dilation 10 px")
    expect(page.locator("#remove-preview img").first).to_be_visible()
    first = page.locator("#remove-preview img").first.get_attribute("src")

    # Releasing the dilation slider re-fills with the new dilation.
    slider = page.locator("#dilate input[type=range]")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    chosen = int(page.locator("#dilate input[type=number]").input_value())
    assert chosen != 10, "the click did not move the slider"
    ui.wait_text("#remove-preview-info", f"dilation {chosen} px")
    expect(page.locator("#remove-preview img").first).not_to_have_attribute("src", first or "")
    ui.shot("remove-preview")

    # Nothing was saved by the previews: the head and the history are as before.
    ui.summary("v1 of 1 · upload")
    expect(page.locator("#history img")).to_have_count(1)
    session = _newest_session(ui_stack)
    assert (session.head, len(session.versions)) == (1, 1)

    # Keep: one new version, made with the previewed dilation; the preview goes away.
    page.locator("#preview-keep-btn").click()
    ui.summary("v2 of 2 · remove")
    expect(page.locator("#history img")).to_have_count(2)
    expect(panel).to_be_hidden(timeout=SLOW)
    session = _newest_session(ui_stack)
    assert (session.head, len(session.versions)) == (2, 2)
    assert session.versions[1].operation == "remove"
    assert session.versions[1].params["dilate"] == chosen
    ui.shot("remove-preview-kept")


def test_two_instances_chosen_and_removed_at_once(
    page: Page, ui_stack: UiStack, artifacts: Path
) -> None:
    ui_stack.require("seem", "inpaint")
    ui = _start(page, ui_stack, artifacts)

    # Two boxes: one mask each (the UI never merges), listed and all checked.
    ui.draw_box("#seg-box", SIZE, (325, 275, 425, 375))
    ui.draw_box("#seg-box", SIZE, (40, 60, 200, 220))
    page.locator("#segment-btn").click()
    picker = page.locator("#instances")
    expect(picker).to_be_visible(timeout=SLOW)
    boxes = picker.locator("input[type=checkbox]")
    expect(boxes).to_have_count(2)
    expect(boxes.nth(0)).to_be_checked()
    expect(boxes.nth(1)).to_be_checked()
    expect(picker).to_contain_text("#1 object")
    expect(picker).to_contain_text("#2 object")
    ui.wait_text("#mask-info", "2 objects")
    ui.shot("two-instances")

    # Unchecking one selects the other alone; checking it again selects both.
    boxes.nth(1).uncheck()
    expect(page.locator("#mask-info")).not_to_contain_text("2 objects", timeout=SLOW)
    boxes.nth(1).check()
    ui.wait_text("#mask-info", "2 objects")

    # Remove both in one edit.
    page.locator("#remove-btn").click()
    ui.summary("v2 of 2 · remove")
    expect(page.locator("#history img")).to_have_count(2)
    expect(picker).to_be_hidden(timeout=SLOW)  # the new head has no selection
    session = _newest_session(ui_stack)
    assert (session.head, len(session.versions)) == (2, 2)
    removed = session.versions[1]
    assert removed.operation == "remove"
    ids = removed.params.get("mask_ids")
    assert isinstance(ids, list) and len(ids) == 2, removed.params
    masks = {m.mask_id: m for m in session.masks}
    assert all(masks[i].version == 1 and masks[i].source == "segment" for i in ids)
    ui.shot("two-instances-removed")
