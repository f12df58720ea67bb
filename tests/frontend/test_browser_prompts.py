"""Point 7 of issue 14 in headless Chromium against the real stack (tiny random models): click
markers, prompts that never silently merge, the mask brush, the editors' own Undo/Clear,
the inpaint label popup's Cancel, unused phrases, and the version a chat turn was about.

Random weights: nothing is asserted about what a mask covers, only what the page shows.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.frontend.conftest import ROOT, UiStack
from tests.frontend.test_browser import SLOW, Ui

pytestmark = pytest.mark.slow
PARK = ROOT / "frontend" / "examples" / "park.png"
SIZE = (640, 448)


def _upload(ui: Ui, page: Page) -> None:
    ui.summary("No image yet")
    page.locator("#upload-btn").locator("xpath=..").locator("input[type=file]").set_input_files(
        str(PARK)
    )
    ui.summary("v1 of 1 · upload")


def _canvas_std(page: Page, selector: str) -> float:
    """How much the editor's canvas varies: a blank canvas is near 0, the park is not."""
    png = page.locator(f"{selector} canvas").first.screenshot()
    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), np.float32).std())


def _shown(page: Page, selector: str, above: float, what: str) -> float:
    """Wait (up to SLOW) until the editor's canvas varies more than ``above``: on a busy
    machine the canvas draws, and the restore after the editor's own undo/clear lands, late."""
    deadline = time.monotonic() + SLOW / 1000
    while (std := _canvas_std(page, selector)) <= above:
        assert time.monotonic() < deadline, f"{what} (canvas std {std:.1f})"
        page.wait_for_timeout(500)
    return std


def _blueness(page: Page, selector: str) -> float:
    """Mean blue minus mean red of the editor's canvas (the brush tints the mask blue)."""
    png = page.locator(f"{selector} canvas").first.screenshot()
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32)
    return float(rgb[..., 2].mean() - rgb[..., 0].mean())


def _area(page: Page) -> int:
    match = re.search(r"(\d+) px", page.locator("#mask-info").inner_text())
    assert match, page.locator("#mask-info").inner_text()
    return int(match.group(1))


def _paint(ui: Ui, selector: str, start: tuple[int, int], end: tuple[int, int]) -> None:
    canvas = ui.page.locator(f"{selector} canvas").first
    canvas.scroll_into_view_if_needed()
    bb = canvas.bounding_box()
    assert bb is not None
    sx, sy = ui._to_screen(bb, SIZE, *start)
    ex, ey = ui._to_screen(bb, SIZE, *end)
    ui.page.mouse.move(sx, sy)
    ui.page.mouse.down()
    ui.page.mouse.move(ex, ey, steps=12)
    ui.page.mouse.up()


def test_prompts_markers_brush_and_editor_undo(
    page: Page, ui_stack: UiStack, artifacts: Path
) -> None:
    ui_stack.require("seem")
    ui = Ui(page, artifacts)
    page.goto(ui_stack.frontend.url)
    _upload(ui, page)
    head_src = page.locator("#seg-click img").first.get_attribute("src")

    # (c) The head editor's own Undo and Clear canvas leave the head image in place.
    shown = _shown(page, "#head-editor", 20, "the head image was never drawn")
    page.locator("#head-editor button[aria-label=Undo]").click()
    page.wait_for_timeout(1000)
    _shown(page, "#head-editor", shown * 0.8, "undo blanked the head image")
    page.locator("#head-editor button[aria-label='Clear canvas']").click()
    page.wait_for_timeout(1000)
    _shown(page, "#head-editor", shown * 0.8, "clear blanked the head image")
    ui.summary("v1 of 1")

    # (a) A click is drawn where it was made.
    ui.click_image("#seg-click", SIZE, (100, 100))
    ui.wait_text("#mask-info", "score")
    expect(page.locator("#seg-click img").first).to_have_attribute(
        "src", re.compile(r"clicks-"), timeout=SLOW
    )
    expect(page.locator("#mask-view .legend-item", has_text="include")).to_have_count(1)
    ui.shot("click-marker")

    # (b) A box after the click: the click is cleared (marker gone), not merged in.
    ui.draw_box("#seg-box", SIZE, (325, 275, 425, 375))
    expect(page.locator("#seg-click img").first).to_have_attribute("src", head_src or "")
    page.locator("#segment-btn").click()
    expect(page.locator("#mask-view .legend-item", has_text="include")).to_have_count(
        0, timeout=SLOW
    )
    ui.wait_text("#mask-info", "score")
    before = _area(page)
    ui.shot("box-after-click")

    # The mask brush: once its canvas shows the mask (tinted blue), paint across the image
    # and add it to the mask: a painted mask (no score), selected, of another area.
    page.locator("#mask-brush").scroll_into_view_if_needed()
    for _ in range(60):
        if _blueness(page, "#mask-brush") > _blueness(page, "#head-editor") + 5:
            break
        page.wait_for_timeout(500)
    else:
        pytest.fail("the brush canvas never showed the selected mask")
    _paint(ui, "#mask-brush", (120, 60), (520, 80))  # starts inside the image
    ui.shot("brush-strokes")
    page.locator("#mask-brush-apply").click()
    page.wait_for_function(
        "() => !document.querySelector('#mask-info').innerText.includes('score')"
        " || document.querySelector('[data-testid=toast-body]')",
        timeout=SLOW,
    )
    assert ui.error_toast().count() == 0, ui.error_toast().all_inner_texts()
    assert _area(page) != before
    ui.shot("brushed")


def test_inpaint_cancel_keeps_the_box_and_chat_turns_name_their_version(
    page: Page, ui_stack: UiStack, artifacts: Path
) -> None:
    ui_stack.require("gligen", "llava")
    ui = Ui(page, artifacts)
    page.goto(ui_stack.frontend.url)
    _upload(ui, page)

    # (d) The user's turn says which version it was about.
    page.locator("#chat-act input").uncheck()
    page.locator("#max-tokens input[type=number]").fill("16")
    page.locator("#chat-input textarea").fill("What is in this image?")
    page.locator("#chat-input textarea").press("Enter")
    expect(page.locator("#chat [data-testid=user]").first).to_contain_text("(on v1)", timeout=SLOW)
    expect(page.locator("#chat .generating")).to_have_count(0, timeout=SLOW)

    # (e) Cancel in the label popup of a new box keeps the box; the phrase list then labels
    # it, and a phrase with no box is a warning.
    page.get_by_role("tab", name="Inpaint new objects").click()
    expect(page.locator("#inpaint-boxes canvas")).to_be_visible(timeout=SLOW)
    ui.draw_box("#inpaint-boxes", SIZE, (40, 240, 200, 400))
    popup = page.locator("#model-box-edit")
    expect(popup).to_be_visible(timeout=SLOW)
    popup.get_by_role("button", name="Cancel").click()
    expect(popup).to_have_count(0)
    page.locator("#inpaint-phrases textarea").fill("a yellow dog; a red hat")
    page.locator("#steps input[type=number]").fill("2")
    page.locator("#inpaint-btn").click()
    expect(ui.error_toast().filter(has_text="a red hat")).to_have_count(1, timeout=SLOW)
    ui.summary("v2 of 2 · inpaint")
    ui.shot("inpaint-after-cancel")

    # After a reload the stored turn still names its version.
    page.reload()
    ui.summary("v2 of 2 · inpaint")
    expect(page.locator("#chat [data-testid=user]").first).to_contain_text("(on v1)", timeout=SLOW)
