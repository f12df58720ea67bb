"""Long jobs in the UI (issue 14, point 2): the progress shows next to the buttons (the bar
under the tabs), and Cancel stops a generation: nothing is saved, the head stays.

Runs against the real stack (tiny GLIGEN), in headless Chromium.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.frontend.conftest import ROOT, UiStack
from tests.frontend.shown import head_pixels, wait_head_shown
from tests.frontend.test_browser import SLOW, Ui

pytestmark = pytest.mark.slow

WATCH_PROGRESS = """(selector) => {
    window.__jobProgress = [];
    const target = document.querySelector(selector);
    new MutationObserver(() => {
        const el = target.querySelector('.progress-text, .progress-level');
        if (el) window.__jobProgress.push(el.innerText);
    }).observe(target, {subtree: true, childList: true, characterData: true});
}"""


def test_cancel_a_generation_with_progress_by_the_buttons(
    page: Page, ui_stack: UiStack, artifacts: Path
) -> None:
    ui_stack.require("gligen")
    ui = Ui(page, artifacts)
    page.goto(ui_stack.frontend.url)
    ui.summary("No image yet")
    page.get_by_role("tab", name="Generate new image").click()
    page.locator("#gen-prompt textarea").fill("a cat on a sofa")
    # Long enough to still be running when Cancel is pressed (tiny GLIGEN, 2 cores).
    page.locator("#gen-width input[type=number]").fill("1024")
    page.locator("#gen-height input[type=number]").fill("1024")
    page.locator("#steps input[type=number]").fill("100")
    page.evaluate(WATCH_PROGRESS, "#job-status")
    page.locator("#gen-btn").click()

    # The gateway's step progress shows in the bar beside the buttons, not only on the image.
    page.wait_for_function(
        "() => window.__jobProgress.some(t => t.includes('/100 steps'))", timeout=SLOW
    )
    expect(page.locator("#cancel-btn")).to_be_visible()
    ui.shot("generation-running")
    page.locator("#cancel-btn").click()
    expect(page.locator("#job-status .progress-text")).to_have_count(0, timeout=SLOW)
    ui.shot("generation-cancelled")

    # Nothing was saved: not now, and not later (the worker's job was cancelled with the
    # stream; a reload re-reads the session from the gateway).
    page.wait_for_timeout(3000)
    ui.summary("No image yet")
    page.reload()
    ui.summary("No image yet")
    expect(page.locator("#history img")).to_have_count(0)


def test_a_stale_second_tab_refreshes_on_edit(
    page: Page, ui_stack: UiStack, artifacts: Path
) -> None:
    """Two tabs of one browser share the session; an edit in tab 1, then an edit in tab 2
    (made on the version tab 2 still shows): tab 2 meets If-Match 409 and shows the latest
    version, the one tab 1 shows, with a notice instead of an error; its next edit works."""
    ui_stack.require("seem", "inpaint")
    ui = Ui(page, artifacts)
    other = page.context.new_page()
    page.goto(ui_stack.frontend.url)
    ui.summary("No image yet")
    blank = head_pixels(page)
    park = ROOT / "frontend" / "examples" / "park.png"
    size, ball, tree = (640, 448), (325, 275, 425, 375), (60, 80, 210, 230)
    page.locator("#upload-btn >> xpath=.. >> input[type=file]").set_input_files(str(park))
    ui.summary("v1 of 1")
    other.goto(ui_stack.frontend.url)  # same localStorage: the same session, at v1
    stale = Ui(other, artifacts)
    stale.summary("v1 of 1")

    def remove(tab: Ui, box: tuple[int, int, int, int]) -> None:
        tab.draw_box("#seg-box", size, box)
        tab.page.locator("#segment-btn").click()
        tab.wait_text("#mask-info", " px")
        tab.page.locator("#remove-btn").click()

    remove(ui, ball)  # tab 1: an edit
    ui.summary("v2 of 2 · remove")
    latest = wait_head_shown(page, blank, evidence=artifacts / "stale-tab-1-FAILED.png")

    remove(stale, ball)  # tab 2: an edit on v1, which is no longer the head
    stale.summary("v2 of 2 · remove")
    expect(other.locator("#history img")).to_have_count(2)
    toast = stale.error_toast().first
    expect(toast).to_contain_text("changed in another tab", timeout=SLOW)
    assert "If-Match" not in toast.inner_text() and "409" not in toast.inner_text()
    # Tab 2 shows what tab 1 shows (same viewport, same version: the same pixels).
    wait_head_shown(other, blank, like=latest, evidence=artifacts / "stale-tab-2-FAILED.png")
    stale.shot("stale-tab-refreshed")

    remove(stale, tree)  # now on the head: a plain edit
    stale.summary("v3 of 3 · remove")
    wait_head_shown(other, blank, evidence=artifacts / "stale-tab-3-FAILED.png")


def test_history_strip_is_one_row_showing_the_newest(
    page: Page, ui_stack: UiStack, artifacts: Path
) -> None:
    """Issue 14 point 7: after more than 8 versions the strip does not wrap (one row that
    scrolls sideways) and the newest version's thumbnail is in view."""
    ui = Ui(page, artifacts)
    page.goto(ui_stack.frontend.url)
    ui.summary("No image yet")
    # Alternating files: the same file twice in a row would not fire the input's change.
    files = [ROOT / "frontend" / "examples" / f"{name}.png" for name in ("park", "table")]
    upload = page.locator("#upload-btn >> xpath=.. >> input[type=file]")
    for n in range(1, 11):
        upload.set_input_files(str(files[n % 2]))
        ui.summary(f"v{n} of {n}")
    thumbs = page.locator("#history .thumbnail-item")
    expect(thumbs).to_have_count(10, timeout=SLOW)
    page.wait_for_timeout(500)
    boxes = [thumbs.nth(i).bounding_box() for i in range(10)]
    assert all(b is not None for b in boxes)
    tops = {round(b["y"]) for b in boxes if b is not None}
    assert len(tops) == 1, f"the strip wrapped: rows at {sorted(tops)}"
    wrap = page.locator("#history .grid-wrap").bounding_box()
    newest = boxes[-1]
    assert wrap is not None and newest is not None
    assert (
        wrap["x"] <= newest["x"] and newest["x"] + newest["width"] <= wrap["x"] + wrap["width"] + 1
    ), f"the newest thumbnail is out of view: {newest} in {wrap}"
    ui.shot("history-ten-versions")


def test_stop_a_streamed_chat_reply(page: Page, ui_stack: UiStack, artifacts: Path) -> None:
    """Stop ends the streamed reply: the input is usable again at once and the reply so far
    stays on screen without growing."""
    llava = ui_stack.workers.get("llava")
    if llava is not None and llava.child.returncode is not None:
        llava.start(timeout=240)  # the flow test stops it at its end
    ui_stack.require("llava")
    ui = Ui(page, artifacts)
    page.goto(ui_stack.frontend.url)
    ui.summary("No image yet")
    page.locator("#max-tokens input[type=number]").fill("1024")
    page.locator("#chat-input textarea").fill("Tell me a long story.")
    page.locator("#chat-input textarea").press("Enter")
    page.wait_for_function(
        "() => { const b = document.querySelectorAll('#chat [data-testid=bot]');"
        " return b.length && b[b.length - 1].innerText.trim().length > 1; }",
        timeout=SLOW,
    )
    page.locator("#chat-stop").click()
    expect(page.locator("#chat .generating")).to_have_count(0, timeout=10_000)
    bot = page.locator("#chat [data-testid=bot]").last
    text = bot.inner_text()
    page.wait_for_timeout(2000)
    assert bot.inner_text() == text, "the reply kept growing after Stop"
    expect(page.locator("#chat [data-testid=user]")).to_have_count(1)
    ui.shot("chat-stopped")
