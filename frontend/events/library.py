"""Events of the session picker ("My sessions"): list on opening, select, open, rename,
delete after a confirmation, export; the list follows the tab's session while it is open."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr
from gradio.blocks import Block

from frontend.events.views import Views
from frontend.handlers import Controller, Library, UiState

PRIVATE: dict[str, Any] = {"api_visibility": "private"}  # the SDK is the API for sessions


def hidden() -> Any:
    """The confirmation row, hidden (built in a handler: at wiring time it would be laid out)."""
    return gr.Row(visible=False)


def wire_library(ctl: Controller, views: Views) -> None:
    """Wire the picker of ``views.page.library``."""
    page = views.page
    lib = page.library
    listed: list[Block] = [
        lib.listing,
        lib.gallery,
        lib.more,
        lib.selected,
        lib.title,
        lib.confirm_row,
    ]

    def show(listing: Library) -> tuple[Any, ...]:
        row = listing.row
        gallery = gr.Gallery(value=listing.gallery(), selected_index=listing.selected)
        more = gr.Button(visible=listing.next_cursor is not None)
        title = row.title if row else ""
        return listing, gallery, more, listing.detail(), title, hidden()

    def skip(outputs: Sequence[Block]) -> tuple[Any, ...]:
        return tuple(gr.skip() for _ in outputs)

    async def on_expand(st: UiState) -> tuple[Any, ...]:
        return True, *show(await ctl.library(st))

    async def on_refresh(st: UiState, listing: Library) -> tuple[Any, ...]:
        row = listing.row
        return show(await ctl.library(st, row.id if row else None))

    async def on_older(st: UiState, listing: Library) -> tuple[Any, ...]:
        return show(await ctl.older(st, listing))

    async def on_follow(st: UiState, listing: Library, is_open: bool) -> tuple[Any, ...]:
        # The tab moved to another session (new, opened, deleted) or another head: the
        # list shows it, but only while someone looks at it.
        if not is_open or not listing.stale(st):
            return skip(listed)
        return show(await ctl.library(st))

    def on_select(listing: Library, evt: gr.SelectData) -> tuple[Any, ...]:
        picked = ctl.select(listing, int(evt.index))
        row = picked.row
        return picked, picked.detail(), row.title if row else "", hidden(), gr.File(visible=False)

    async def on_open(st: UiState, listing: Library) -> tuple[Any, ...]:
        return views.loaded(await ctl.open_session(st, listing))

    async def on_rename(st: UiState, listing: Library, title: str | None) -> tuple[Any, ...]:
        return show(await ctl.rename(st, listing, title))

    def on_ask_delete(listing: Library) -> tuple[Any, ...]:
        row = ctl.picked(listing)
        what = f"Delete **{row.title}** and all {row.versions} of its versions for good?"
        return gr.Row(visible=True), what

    async def on_delete(st: UiState, listing: Library) -> tuple[Any, ...]:
        after, loaded = await ctl.delete(st, listing)
        page_update = views.loaded(loaded) if loaded else skip(views.load_outputs)
        return *show(after), *page_update

    async def on_export(st: UiState, listing: Library) -> Any:
        return gr.File(value=await ctl.export(st, listing), visible=True)

    lib.accordion.expand(on_expand, [page.state], [lib.is_open, *listed], **PRIVATE)
    lib.accordion.collapse(lambda: False, None, [lib.is_open], queue=False, **PRIVATE)
    lib.refresh.click(on_refresh, [page.state, lib.listing], listed, **PRIVATE)
    lib.more.click(on_older, [page.state, lib.listing], listed, **PRIVATE)
    page.state.change(
        on_follow,
        [page.state, lib.listing, lib.is_open],
        listed,
        show_progress="hidden",  # most state changes list nothing: no flicker on each
        **PRIVATE,
    )
    lib.gallery.select(
        on_select,
        [lib.listing],
        [lib.listing, lib.selected, lib.title, lib.confirm_row, lib.export_file],
        **PRIVATE,
    )
    lib.open.click(on_open, [page.state, lib.listing], views.load_outputs, **PRIVATE)
    rename_inputs = [page.state, lib.listing, lib.title]
    lib.rename.click(on_rename, rename_inputs, listed, **PRIVATE)
    lib.title.submit(on_rename, rename_inputs, listed, **PRIVATE)
    lib.delete.click(
        on_ask_delete, [lib.listing], [lib.confirm_row, lib.confirm_text], queue=False, **PRIVATE
    )
    lib.cancel.click(hidden, None, [lib.confirm_row], queue=False, **PRIVATE)
    lib.confirm.click(
        on_delete, [page.state, lib.listing], [*listed, *views.load_outputs], **PRIVATE
    )
    lib.export.click(on_export, [page.state, lib.listing], [lib.export_file], **PRIVATE)
