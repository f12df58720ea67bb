"""Issue 15 in the UI: the chat acts by default. An edit typed into the chat is planned and run
as the ordinary workflow, the chat lists what it did, and the image panel shows the new head.

Runs against the real stack (tiny workers, the rules planner), in headless Chromium. "undo" is
the edit here because its result does not depend on random-weight models.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.frontend.conftest import ROOT, UiStack
from tests.frontend.test_browser import SLOW, Ui

pytestmark = pytest.mark.slow


def _two_versions(page: Page, ui: Ui, ui_stack: UiStack) -> None:
    page.goto(ui_stack.frontend.url)
    ui.summary("No image yet")
    upload = page.locator("#upload-btn >> xpath=.. >> input[type=file]")
    upload.set_input_files(str(ROOT / "frontend" / "examples" / "park.png"))
    ui.summary("v1 of 1")
    upload.set_input_files(str(ROOT / "frontend" / "examples" / "table.png"))
    ui.summary("v2 of 2")


def test_an_edit_typed_in_the_chat_changes_the_image_and_lists_the_action(
    page: Page, ui_stack: UiStack, artifacts: Path
) -> None:
    ui_stack.require("llava")
    ui = Ui(page, artifacts)
    _two_versions(page, ui, ui_stack)
    expect(page.locator("#chat-act input[type=checkbox]")).to_be_checked()  # acts by default
    page.locator("#chat-input textarea").fill("please undo that")
    page.locator("#chat-input textarea").press("Enter")
    # The chat says what it did, and the image panel moved to the version it left.
    ui.wait_text("#chat", "Undid")
    ui.summary("v1 of 2")
    ui.shot("chat-acted")


def test_with_the_toggle_off_the_chat_only_talks(
    page: Page, ui_stack: UiStack, artifacts: Path
) -> None:
    ui_stack.require("llava")
    ui = Ui(page, artifacts)
    _two_versions(page, ui, ui_stack)
    page.locator("#chat-act input[type=checkbox]").uncheck()
    page.locator("#chat-input textarea").fill("undo")
    page.locator("#chat-input textarea").press("Enter")
    # A plain reply streams in (the last bot message is not the "…" placeholder any more)...
    last = page.locator("#chat .message-row").last
    expect(last).not_to_have_text("…", timeout=SLOW)
    page.wait_for_timeout(1500)
    # ...and nothing was edited: no action list, the head stays v2.
    expect(page.locator("#chat")).not_to_contain_text("Undid")
    ui.summary("v2 of 2")
