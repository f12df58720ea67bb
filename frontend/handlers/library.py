"""The session picker's handlers: the user's sessions as a list to open, rename, delete and
export (``GET/PATCH/DELETE /v1/sessions``, ``GET /v1/sessions/{id}/export``)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import time
from dataclasses import dataclass, field, replace

from PIL import Image

from frontend.handlers.errors import Gateway, fail, user_errors
from frontend.handlers.inputs import chat_history
from frontend.handlers.session import SessionHandlers
from frontend.handlers.state import Loaded, UiState, browser_value
from lvi.contracts.gateway import SessionSummary
from lvi_client import APIError

LIBRARY_PAGE = 24  # sessions per page of the picker (newest change first)
THUMB_SIZE = 256  # px, the longer side of a picker thumbnail
UNTITLED = "Untitled session"


@dataclass
class SessionRow:
    """One session as the picker shows it."""

    id: str
    title: str
    versions: int
    updated_at: float
    thumbnail: str  # a local file: the head image scaled down, or a blank card
    current: bool = False

    def caption(self, now: float | None = None) -> str:
        count = f"{self.versions} version{'s' if self.versions != 1 else ''}"
        mark = " · open now" if self.current else ""
        return f"{self.title} · {count} · {ago(self.updated_at, now)}{mark}"


@dataclass
class Library:
    """What the picker shows: the rows, which one is selected, and for which session and
    head of this tab it was listed (so it is refreshed when either moves)."""

    rows: list[SessionRow] = field(default_factory=list)
    selected: int | None = None
    current: str | None = None
    current_head: int | None = None
    next_cursor: str | None = None

    @property
    def row(self) -> SessionRow | None:
        if self.selected is None or not 0 <= self.selected < len(self.rows):
            return None
        return self.rows[self.selected]

    def gallery(self) -> list[tuple[str, str]]:
        now = time.time()
        return [(r.thumbnail, r.caption(now)) for r in self.rows]

    def detail(self) -> str:
        """The selected session in one line (what Open, Rename, Delete, Export act on)."""
        row = self.row
        if row is None:
            if not self.rows:
                return "No sessions yet."
            return "Click a session to select it."
        return f"Selected: **{row.title}** · {row.caption().removeprefix(row.title + ' · ')}"

    def stale(self, state: UiState) -> bool:
        return (self.current, self.current_head) != (state.session_id, state.head)


def ago(then: float, now: float | None = None) -> str:
    """A time as people say it: '2 min ago', '3 h ago', else the UTC date."""
    delta = (time.time() if now is None else now) - then
    if delta < 60:
        return "just now"
    if delta < 3600:
        return f"{int(delta // 60)} min ago"
    if delta < 86400:
        return f"{int(delta // 3600)} h ago"
    return time.strftime("%d %b %Y", time.gmtime(then))


def zip_name(title: str | None, session_id: str) -> str:
    """A file name for the export: the title's words, else the session id."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title or "").strip("-")[:60]
    return f"{slug or 'lvi-session-' + session_id[:8]}.zip"


def _thumbnail(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (THUMB_SIZE, THUMB_SIZE))  # JPEG: decode at a fraction of the size
        small = im.convert("RGB")
        small.thumbnail((THUMB_SIZE, THUMB_SIZE))
        buf = io.BytesIO()
        small.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


class LibraryHandlers(SessionHandlers):
    """The session picker: list, open, rename, delete, export the user's own sessions."""

    async def library(self, state: UiState, selected: str | None = None) -> Library:
        """The newest page of the user's sessions; ``selected`` (else the tab's own session)
        is the selected row."""
        client = self.gateway(state)
        with user_errors():
            page = await client.list_sessions(limit=LIBRARY_PAGE)
        rows = await self._rows(client, state, page.sessions)
        want = selected or state.session_id
        index = next((i for i, r in enumerate(rows) if r.id == want), None)
        return Library(rows, index, state.session_id, state.head, page.next_cursor)

    async def older(self, state: UiState, lib: Library) -> Library:
        """The list with its next page (older sessions) added below; the selection stays."""
        if lib.next_cursor is None:
            return lib
        client = self.gateway(state)
        with user_errors():
            page = await client.list_sessions(limit=LIBRARY_PAGE, cursor=lib.next_cursor)
        known = {r.id for r in lib.rows}  # a session changed meanwhile moved to the top
        rows = await self._rows(client, state, [s for s in page.sessions if s.id not in known])
        return replace(lib, rows=[*lib.rows, *rows], next_cursor=page.next_cursor)

    async def _rows(
        self, client: Gateway, state: UiState, sessions: list[SessionSummary]
    ) -> list[SessionRow]:
        sem = asyncio.Semaphore(4)  # a page must not open dozens of connections at once

        async def row(s: SessionSummary) -> SessionRow:
            async with sem:
                thumb = await self._thumbnail(client, s)
            return SessionRow(
                s.id, s.title or UNTITLED, s.versions, s.updated_at, thumb, s.id == state.session_id
            )

        return list(await asyncio.gather(*(row(s) for s in sessions)))

    async def _thumbnail(self, client: Gateway, s: SessionSummary) -> str:
        if s.head is None:
            return str(self.files.blank(THUMB_SIZE, THUMB_SIZE * 3 // 4))
        # A version never changes, so neither does its thumbnail; hashed, so no session id
        # shows in a file's URL.
        key = "thumb-" + hashlib.sha256(f"{s.id}/{s.head}".encode()).hexdigest()[:32]
        path = self.files.known(key)
        if path is None:
            try:
                data = await client.get_image(s.id, s.head)
            except APIError:  # deleted or expired since it was listed: a blank card
                return str(self.files.blank(THUMB_SIZE, THUMB_SIZE * 3 // 4))
            path = self.files.write(key, await asyncio.to_thread(_thumbnail, data), ".jpg")
        return str(path)

    def select(self, lib: Library, index: int) -> Library:
        """A click on the picker's n-th session."""
        if not 0 <= index < len(lib.rows):
            raise fail("That session is no longer in the list: refresh it.")
        return replace(lib, selected=index)

    def picked(self, lib: Library | None) -> SessionRow:
        """The selected row, or a message to select one."""
        row = lib.row if lib else None
        if row is None:
            raise fail("Select a session in the list first.")
        return row

    async def open_session(self, state: UiState, lib: Library | None) -> Loaded:
        """Show the selected session as a page load shows it (image, history, chat)."""
        row = self.picked(lib)
        fresh = UiState(token=state.token, principal=state.principal, address=state.address)
        client = self.gateway(fresh)
        with user_errors():
            session = await client.get_session(row.id)
            banner, gen_size = await self.page_info(fresh)
            st, head = await self._view(replace(fresh, session_id=session.id), session)
        return Loaded(st, head, chat_history(session), banner, browser_value(st), gen_size)

    async def rename(self, state: UiState, lib: Library | None, title: str | None) -> Library:
        """Give the selected session a new title (empty clears it); the list as it is now."""
        row = self.picked(lib)
        with user_errors():
            await self.gateway(state).rename_session(row.id, (title or "").strip() or None)
        return await self.library(state, row.id)

    async def delete(self, state: UiState, lib: Library | None) -> tuple[Library, Loaded | None]:
        """Delete the selected session; deleting the tab's own session starts a fresh one
        (its :class:`Loaded`, else None). The list as it is now."""
        row = self.picked(lib)
        with user_errors():
            await self.gateway(state).delete_session(row.id)
        loaded = await self.new_session(state) if row.id == state.session_id else None
        return await self.library(loaded.state if loaded else state), loaded

    async def export(self, state: UiState, lib: Library | None) -> str:
        """The selected session as a zip file (versions, masks, chat), under a readable name."""
        row = self.picked(lib)
        with user_errors():
            data = await self.gateway(state).export_session(row.id)
        path = self.files.write(f"export-{hashlib.sha256(data).hexdigest()}", data, ".zip")
        return str(self.files.named(path, zip_name(row.title, row.id)))
