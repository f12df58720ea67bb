"""The session picker ("My sessions"): its handlers over the fake gateway (fast), and a user
who leaves a session and finds it again, in Chromium against the real stack (slow)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import gradio as gr
import pytest
from playwright.sync_api import Page, expect

from frontend.handlers import Controller, Library, UiState
from frontend.handlers.library import LIBRARY_PAGE, ago, zip_name
from tests.frontend.conftest import ROOT, UiStack
from tests.frontend.fakes import FakeGateway
from tests.frontend.test_browser import SLOW, Ui
from tests.frontend.test_handlers import PARK, threaded


async def _two_sessions(ctl: Controller) -> tuple[UiState, UiState]:
    """Session 1 with an image, then a new (empty) session 2: the tab is on session 2."""
    first = (await ctl.open(None)).state
    first, _ = await ctl.upload(first, PARK)
    second = (await ctl.new_session(first)).state
    return first, second


# -- pure helpers ----------------------------------------------------------------------------
def test_times_and_zip_names() -> None:
    assert ago(1000.0, 1030.0) == "just now"
    assert ago(1000.0, 1000.0 + 150) == "2 min ago"
    assert ago(1000.0, 1000.0 + 7300) == "2 h ago"
    assert ago(0.0, 3 * 86400.0) == "01 Jan 1970"
    assert zip_name("My park / edits!", "abc") == "My-park-edits.zip"
    assert zip_name(None, "0123456789") == "lvi-session-01234567.zip"


# -- handlers over the fake -------------------------------------------------------------------
@threaded
async def test_new_sessions_get_distinct_titles_and_the_list_is_newest_first(
    ctl: Controller, fake: FakeGateway
) -> None:
    first, second = await _two_sessions(ctl)
    lib = await ctl.library(second)
    assert [r.id for r in lib.rows] == [second.session_id, first.session_id]
    assert lib.rows[0].title.startswith("Session of ")  # not one shared name for all
    # the tab's own session is selected and marked; the other shows its head and count
    assert lib.selected == 0 and lib.rows[0].current and not lib.rows[1].current
    assert lib.rows[1].versions == 1 and "1 version ·" in lib.rows[1].caption()
    assert "open now" in lib.gallery()[0][1] and "open now" not in lib.gallery()[1][1]
    thumb = Path(lib.rows[1].thumbnail)
    assert thumb.exists() and thumb.suffix == ".jpg"
    assert Path(lib.rows[0].thumbnail).exists()  # an empty session: a blank card
    assert "Selected: **Session of " in lib.detail()
    # a thumbnail is fetched once per head, not at every listing
    fetched = len(fake.calls)
    again = await ctl.library(second)
    assert again.rows[1].thumbnail == lib.rows[1].thumbnail
    assert len(fake.calls) == fetched + 1  # only the listing itself
    assert not lib.stale(second) and lib.stale(first)


@threaded
async def test_older_sessions_come_a_page_at_a_time(ctl: Controller) -> None:
    state = (await ctl.open(None)).state
    for _ in range(LIBRARY_PAGE + 2):
        state = (await ctl.new_session(state)).state
    lib = await ctl.library(state)
    assert len(lib.rows) == LIBRARY_PAGE and lib.next_cursor is not None
    lib = await ctl.older(state, lib)
    assert len(lib.rows) == LIBRARY_PAGE + 3 and lib.next_cursor is None
    assert len({r.id for r in lib.rows}) == len(lib.rows)
    assert lib.row is not None and lib.row.id == state.session_id  # still the tab's own
    assert await ctl.older(state, lib) == lib  # nothing more: nothing asked


@threaded
async def test_open_shows_the_session_like_a_page_load(ctl: Controller) -> None:
    first, second = await _two_sessions(ctl)
    lib = ctl.select(await ctl.library(second), 1)
    assert lib.row is not None and lib.row.id == first.session_id
    loaded = await ctl.open_session(second, lib)
    assert loaded.state.session_id == first.session_id and loaded.state.head == 1
    assert loaded.head.image is not None and len(loaded.head.gallery) == 1
    assert "**v1** of 1" in loaded.head.summary
    assert loaded.stored == {"session_id": first.session_id, "token": None}  # a reload resumes it
    assert loaded.banner is not None  # the fake's models are random: the banner stays


@threaded
async def test_rename_then_the_list_shows_the_new_title(ctl: Controller) -> None:
    first, second = await _two_sessions(ctl)
    lib = ctl.select(await ctl.library(second), 1)
    lib = await ctl.rename(second, lib, "  Park, ball removed ")
    assert lib.row is not None and lib.row.id == first.session_id  # still selected
    assert lib.row.title == "Park, ball removed"
    # an empty title clears it: the list says so rather than showing nothing
    lib = await ctl.rename(second, lib, "   ")
    assert lib.row is not None and lib.row.title == "Untitled session"


@threaded
async def test_delete_another_session_keeps_the_tab(ctl: Controller, fake: FakeGateway) -> None:
    first, second = await _two_sessions(ctl)
    lib = ctl.select(await ctl.library(second), 1)
    after, loaded = await ctl.delete(second, lib)
    assert loaded is None and first.session_id not in fake.sessions
    assert [r.id for r in after.rows] == [second.session_id]


@threaded
async def test_delete_the_current_session_starts_a_fresh_one(
    ctl: Controller, fake: FakeGateway
) -> None:
    _first, second = await _two_sessions(ctl)
    lib = await ctl.library(second)
    after, loaded = await ctl.delete(second, lib)
    assert loaded is not None and loaded.state.session_id not in (None, second.session_id)
    assert second.session_id not in fake.sessions
    assert loaded.stored == {"session_id": loaded.state.session_id, "token": None}
    assert after.row is not None and after.row.id == loaded.state.session_id and after.row.current


@threaded
async def test_export_writes_a_named_zip_with_the_versions(ctl: Controller) -> None:
    _first, second = await _two_sessions(ctl)
    lib = await ctl.rename(second, ctl.select(await ctl.library(second), 1), "Park edits")
    path = Path(await ctl.export(second, lib))
    assert path.name == "Park-edits.zip"
    with zipfile.ZipFile(path) as z:
        assert "versions/v0001.png" in z.namelist()


@threaded
async def test_nothing_selected_or_gone_reads_as_a_message(
    ctl: Controller, fake: FakeGateway
) -> None:
    first, second = await _two_sessions(ctl)
    for call in (
        ctl.open_session(second, Library()),
        ctl.rename(second, None, "x"),
        ctl.delete(second, Library()),
        ctl.export(second, Library()),
    ):
        with pytest.raises(gr.Error, match="Select a session"):
            await call
    with pytest.raises(gr.Error, match="no longer in the list"):
        ctl.select(Library(), 0)
    # deleted elsewhere since it was listed: the gateway's own message
    lib = ctl.select(await ctl.library(second), 1)
    del fake.sessions[first.session_id]
    with pytest.raises(gr.Error, match="Session not found"):
        await ctl.open_session(second, lib)


# -- in Chromium against the real stack ------------------------------------------------------


@pytest.mark.slow
def test_a_session_left_and_found_again(page: Page, ui_stack: UiStack, artifacts: Path) -> None:
    ui = Ui(page, artifacts)
    park = ROOT / "frontend" / "examples" / "park.png"
    page.goto(ui_stack.frontend.url)
    ui.summary("No image yet")

    # Session 1: an image; the picker names it and marks it as the open one.
    page.locator("#upload-btn").locator("xpath=..").locator("input[type=file]").set_input_files(
        str(park)
    )
    ui.summary("v1 of 1 · upload · 640x448")
    page.locator("#library").get_by_text("My sessions").first.click()
    ui.wait_text("#library-selected", "open now")
    selected = page.locator("#library-selected").inner_text()
    title = selected.split("Selected: ", 1)[1].split(" · ", 1)[0].strip()
    assert title.startswith("Session of "), selected
    ui.shot("library-session-1")

    # New session: the image is gone, the list follows (session 1 is no longer open).
    page.locator("#new-session-btn").click()
    ui.summary("No image yet")
    expect(page.locator("#history img")).to_have_count(0, timeout=SLOW)
    ui.wait_text("#library-selected", "0 versions")
    item = page.locator("#library-gallery .thumbnail-item").filter(has_text=title)
    expect(item).to_have_count(1, timeout=SLOW)
    expect(item).not_to_contain_text("open now")

    # Find session 1 by its title and open it: its image and history are back.
    item.click()
    ui.wait_text("#library-selected", title)
    ui.wait_text("#library-selected", "1 version")
    page.locator("#library-open-btn").click()
    ui.summary("v1 of 1 · upload · 640x448")
    expect(page.locator("#history img")).to_have_count(1, timeout=SLOW)
    expect(item).to_contain_text("open now", timeout=SLOW)
    ui.shot("library-reopened")

    # Rename it: the list shows the new title.
    new_title = f"Park found again {title[-12:-4]}"
    page.locator("#library-title input, #library-title textarea").first.fill(new_title)
    page.locator("#library-rename-btn").click()
    renamed = page.locator("#library-gallery .thumbnail-item").filter(has_text=new_title)
    expect(renamed).to_have_count(1, timeout=SLOW)
    ui.wait_text("#library-selected", new_title)

    # Export: a zip of this session holding its version.
    page.locator("#library-export-btn").click()
    link = page.locator("#library-export-file a").first
    expect(link).to_be_visible(timeout=SLOW)
    href = link.get_attribute("href")
    assert href, "no download link"
    response = page.request.get(href if href.startswith("http") else ui_stack.frontend.url + href)
    assert response.ok, response.status
    with zipfile.ZipFile(io.BytesIO(response.body())) as z:
        names = z.namelist()
    assert any(n.startswith("versions/") for n in names), names
    ui.shot("library-exported")

    # A reload resumes the session opened from the picker.
    page.reload()
    ui.summary("v1 of 1 · upload · 640x448")

    # Delete it (after confirming): a fresh session takes its place.
    page.locator("#library").get_by_text("My sessions").first.click()
    ui.wait_text("#library-selected", new_title)
    page.locator("#library-delete-btn").click()
    ui.wait_text("#library-confirm-text", new_title)
    page.locator("#library-delete-confirm-btn").click()
    ui.summary("No image yet")
    expect(renamed).to_have_count(0, timeout=SLOW)
    ui.shot("library-deleted")
