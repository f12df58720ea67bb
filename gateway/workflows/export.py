"""Export of a session as one zip: every version's image, every mask, the session as JSON and
the chat as JSON and Markdown.

Layout of the archive (``<session id>.zip``)::

    session.json            the session as GET /v1/sessions/{id} answers it
    versions/v0001.png      each version's stored bytes (png, jpg or webp, as stored)
    masks/<mask_id>.png     each mask (single-channel PNG)
    chat.json               the messages (role, content, version, note, created_at)
    chat.md                 the same, readable

Images are read from Redis one at a time and written into a spooled temporary file (in
memory up to 16 MiB, then on disk), so a session near the byte cap does not sit in memory
twice. Images are stored uncompressed in the zip (they are compressed already).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import IO, Any

from lvi.contracts.gateway import Message, Session

from ..presenters import present_session
from ..sessions import SessionStore

SPOOL_BYTES = 16 * 1024 * 1024
CHUNK = 256 * 1024
_EXT = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


def chat_markdown(session: Session) -> str:
    """The chat as Markdown: one section per turn, naming the image version it was about."""
    lines = [f"# {session.title or 'Session ' + session.id}", ""]
    for m in session.messages:
        when = datetime.fromtimestamp(m.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        about = f" (image v{m.version})" if m.version is not None else ""
        lines += [f"## {m.role}{about}, {when}", ""]
        if m.note:
            lines += [f"> {m.note}", ""]
        lines += [m.content, ""]
    return "\n".join(lines)


def _messages_json(messages: list[Message]) -> str:
    return json.dumps([m.model_dump(mode="json") for m in messages], indent=2)


class SessionExporter:
    """Writes a session's zip (see the module docstring for its layout)."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def export(self, principal: str, sid: str) -> IO[bytes]:
        """The zip, rewound, in a temporary file the caller must close."""
        meta = await self.store.meta(sid, principal)
        versions, masks, messages, redo, ttl = await self.store.snapshot(sid)
        session = present_session(meta, versions, masks, messages, redo, ttl)
        out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        try:
            zf = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
            text: dict[str, str] = {
                "session.json": session.model_dump_json(indent=2),
                "chat.json": _messages_json(session.messages),
                "chat.md": chat_markdown(session),
            }
            for name, body in text.items():
                await asyncio.to_thread(zf.writestr, name, body)
            for v in versions:
                data = await self.store.image(sid, v)
                name = f"versions/v{v.id:04d}.{_EXT.get(v.format, 'bin')}"
                await asyncio.to_thread(_store, zf, name, data)
            for m in masks:
                _, data = await self.store.mask(sid, m.mask_id)
                await asyncio.to_thread(_store, zf, f"masks/{m.mask_id}.png", data)
            await asyncio.to_thread(zf.close)
            out.seek(0)
            return out
        except BaseException:
            out.close()
            raise


def _store(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)


async def iter_file(f: IO[bytes]) -> AsyncIterator[bytes]:
    """A file's bytes in chunks (read in a thread when spooled to disk); closes it at the end."""
    try:
        while True:
            chunk: Any = await asyncio.to_thread(f.read, CHUNK)
            if not chunk:
                return
            yield bytes(chunk)
    finally:
        f.close()
