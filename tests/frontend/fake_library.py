"""The session library part of :class:`tests.frontend.fakes.FakeGateway`: list, rename,
delete and export, over the fake's in-memory sessions."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from lvi_client import SessionPage, SessionSummary


class FakeLibrary:
    """``list_sessions``/``rename_session``/``delete_session``/``export_session`` as the
    gateway answers them (newest change first, offset cursors, a zip like the real one)."""

    sessions: dict[str, Any]
    calls: list[tuple[str, dict[str, Any]]]

    def _s(self, sid: str) -> Any:
        raise NotImplementedError

    def _summary(self, s: Any) -> SessionSummary:
        return SessionSummary(
            id=s.id,
            title=s.title,
            created_at=s.updated,
            updated_at=s.updated,
            head=s.head,
            versions=len(s.versions),
            thumbnail_url=f"/v1/sessions/{s.id}/images/{s.head}" if s.head else None,
        )

    async def list_sessions(self, *, limit: int = 20, cursor: str | None = None) -> SessionPage:
        self.calls.append(("list_sessions", {"limit": limit, "cursor": cursor}))
        rows = sorted(self.sessions.values(), key=lambda s: s.updated, reverse=True)
        start = int(cursor or 0)
        more = start + limit < len(rows)
        return SessionPage(
            sessions=[self._summary(s) for s in rows[start : start + limit]],
            next_cursor=str(start + limit) if more else None,
        )

    async def rename_session(self, session_id: str, title: str | None) -> SessionSummary:
        self.calls.append(("rename_session", {"title": title}))
        s = self._s(session_id)
        s.title = title
        return self._summary(s)

    async def delete_session(self, session_id: str) -> None:
        self.calls.append(("delete_session", {"session_id": session_id}))
        self._s(session_id)
        del self.sessions[session_id]

    async def export_session(self, session_id: str) -> bytes:
        s = self._s(session_id)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for vid, data in s.images.items():
                z.writestr(f"versions/v{vid:04d}.png", data)
            chat = [m.model_dump() for m in s.messages]
            z.writestr("chat.json", json.dumps(chat))
            z.writestr("session.json", json.dumps(self._summary(s).model_dump()))
        return buf.getvalue()
