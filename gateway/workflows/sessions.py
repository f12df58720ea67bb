"""Session workflows: create, read, delete, image upload and reads, undo/redo/checkout."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

from lvi.contracts.gateway import Session, Version
from lvi.errors import BadRequest, NotFound
from lvi.images import EncodedImage
from lvi.pngcheck import png_problem

from ..idempotency import EditContext, Idempotency, fingerprint, parse_if_match
from ..presenters import present_session, present_version
from ..sessions import IdemClaim, IdemReplay, SessionStore, VersionRecord
from ..sessions.index import SessionIndex
from .base import Editor, Event


class SessionService:
    """A caller's sessions and their image versions; every method checks ownership (404)."""

    def __init__(
        self,
        store: SessionStore,
        editor: Editor,
        idempotency: Idempotency,
        index: SessionIndex | None = None,
    ) -> None:
        self.store = store
        self.editor = editor
        self.idempotency = idempotency
        self.index = index

    async def create_session(
        self, principal: str, title: str | None, idempotency_key: str | None
    ) -> Session:
        """A new session. With an Idempotency-Key the id is derived from it, so a retried
        create returns the same session instead of a second one."""
        fp = ""
        if idempotency_key:
            sid = hashlib.sha256(f"{principal}\0{idempotency_key}".encode()).hexdigest()[:24]
            fp = fingerprint("create", sid, (title or "").encode())
        else:
            sid = self.store.new_id()
        meta, created = await self.store.create(principal, sid, title, fp)
        if created and self.index is not None:
            await self.index.touch(principal, sid, meta.created_at)
        return await self.session(principal, sid)

    async def session(self, principal: str, sid: str) -> Session:
        meta = await self.store.meta(sid, principal)
        versions, masks, messages, redo, ttl = await self.store.snapshot(sid)
        return present_session(meta, versions, masks, messages, redo, ttl)

    async def delete_session(self, principal: str, sid: str) -> None:
        await self.store.delete(sid, principal)
        if self.index is not None:
            await self.index.forget(principal, sid)

    async def clear_messages(self, principal: str, sid: str) -> None:
        """Start the conversation over (the UI's "Clear chat"); images are untouched."""
        await self.store.clear_messages(sid, principal)

    async def image(self, principal: str, sid: str, ref: str) -> tuple[VersionRecord, bytes]:
        """The bytes of version ``ref`` (a number or ``head``)."""
        meta = await self.store.meta(sid, principal)
        if ref == "head":
            if meta.head is None:
                raise NotFound("The session has no image yet.", code="no_image")
            vid = meta.head
        else:
            try:
                vid = int(ref)
            except ValueError:
                raise NotFound(f"Version {ref!r} not found.", code="version_not_found") from None
        rec = await self.store.version(sid, vid)
        return rec, await self.store.image(sid, rec)

    async def mask_png(self, principal: str, sid: str, mask_id: str) -> bytes:
        await self.store.meta(sid, principal)
        _, data = await self.store.mask(sid, mask_id)
        return data

    async def move_head(
        self,
        principal: str,
        sid: str,
        action: str,
        if_match: str | None,
        target: int | None = None,
        idempotency_key: str | None = None,
    ) -> Version:
        """Undo, redo or checkout. With an Idempotency-Key a retried undo returns the first
        answer instead of undoing twice (``If-Match`` protects the same way)."""
        await self.store.meta(sid, principal)
        expected = parse_if_match(if_match)
        claim: IdemClaim | None = None
        if idempotency_key:
            got = await self.idempotency.claim(
                sid,
                principal,
                idempotency_key,
                action,
                fingerprint(action, sid, str(target).encode()),
            )
            if isinstance(got, IdemReplay):
                return present_version(sid, await self.store.version(sid, got.version or 0))
            claim = got
        try:
            head = await self.store.move_head(
                sid, principal, action, expected_head=expected, target=target, idem=claim
            )
        except BaseException:
            await self.idempotency.release(claim)
            raise
        return present_version(sid, await self.store.version(sid, head))

    async def upload(
        self, ctx: EditContext, data: bytes, filename: str | None
    ) -> AsyncIterator[Event]:
        """An uploaded image (bytes, never decoded: only its header is read, and a PNG's
        structure is checked) as a version."""
        image = EncodedImage.from_bytes(data, self.editor.limits, param="file")
        problem = png_problem(data) if image.format == "PNG" else None
        if problem is not None:  # e.g. half a PNG with an IEND appended
            raise BadRequest(
                f"The PNG file is incomplete or corrupt: {problem}.",
                code="invalid_image",
                param="file",
            )
        params: dict[str, Any] = {"format": image.format}
        if filename:
            params["filename"] = filename[:200]
        yield await self.editor.commit(ctx, image, "upload", params)
