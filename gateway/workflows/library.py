"""A caller's sessions as a library: list them (newest change first), rename one, export one.

The listing reads the per-principal index (:class:`~gateway.sessions.index.SessionIndex`)
and then each listed session's meta in one pipelined round trip; ids whose session is gone
(expired, deleted elsewhere) are dropped from the index as they are met, so a page is always
of live sessions and the offset cursor stays exact.
"""

from __future__ import annotations

import time
from typing import Any

from lvi.contracts.gateway import SessionPage, SessionSummary
from lvi.errors import BadRequest, NotFound

from ..sessions import SessionMeta, SessionStore
from ..sessions.errors import redis_guard
from ..sessions.index import SessionIndex, meta_from_hash
from ..sessions.scripts import load_scripts

MAX_PAGE = 100


def parse_cursor(cursor: str | None) -> int:
    """The offset an opaque cursor names (``None``: the first page)."""
    if not cursor:
        return 0
    try:
        offset = int(cursor)
    except ValueError:
        offset = -1
    if offset < 0:
        raise BadRequest("The cursor is not one this API gave.", code="bad_cursor", param="cursor")
    return offset


def summary(meta: SessionMeta) -> SessionSummary:
    return SessionSummary(
        id=meta.id,
        title=meta.title,
        created_at=meta.created_at,
        updated_at=meta.updated_at,
        head=meta.head,
        versions=meta.nversions,
        thumbnail_url=f"/v1/sessions/{meta.id}/images/{meta.head}" if meta.head else None,
    )


class SessionLibrary:
    """Lists, renames and indexes a principal's sessions."""

    def __init__(self, store: SessionStore, index: SessionIndex) -> None:
        self.store = store
        self.index = index
        self._rename = store.redis.register_script(load_scripts()["rename"])

    async def page(self, principal: str, cursor: str | None, limit: int) -> SessionPage:
        """Up to ``limit`` live sessions from ``cursor``, newest change first."""
        offset = parse_cursor(cursor)
        limit = max(1, min(limit, MAX_PAGE))
        found: list[SessionSummary] = []
        pos = offset
        more = False
        while len(found) < limit:
            want = limit - len(found) + 1  # one more than needed: is there a next page?
            ids = await self.index.ids(principal, pos, want)
            if not ids:
                break
            metas = await self._metas(ids)
            live = [m for m in metas if m is not None and m.owner == principal]
            alive = {m.id for m in live}
            await self.index.forget(principal, *(sid for sid in ids if sid not in alive))
            take = live[: limit - len(found)]
            found += [summary(m) for m in take]
            pos += len(take)  # the gone ones were removed: later ids moved up by that many
            if len(live) > len(take):
                more = True
                break
            if len(ids) < want:
                break
        return SessionPage(sessions=found, next_cursor=str(pos) if more else None)

    async def _metas(self, ids: list[str]) -> list[SessionMeta | None]:
        with redis_guard():
            async with self.store.redis.pipeline(transaction=False) as pipe:
                for sid in ids:
                    pipe.hgetall(self.store.keys(sid).meta)
                raws: list[dict[Any, Any]] = await pipe.execute()
        return [meta_from_hash(sid, raw) for sid, raw in zip(ids, raws, strict=True)]

    async def rename(self, principal: str, sid: str, title: str | None) -> SessionSummary:
        now = time.time()
        with redis_guard():
            status, _ = await self._rename(
                keys=self.store.keys(sid).all(),
                args=[principal, repr(now), self.store.settings.session_ttl_s, title or ""],
            )
        if (status.decode() if isinstance(status, bytes) else status) != "ok":
            raise NotFound(f"Session {sid} not found.", code="session_not_found")
        await self.index.touch(principal, sid, now)
        return summary(await self.store.meta(sid, principal))
