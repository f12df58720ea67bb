"""Each principal's sessions, so a caller can find them again (``GET /v1/sessions``).

One sorted set per principal, ``lvi:owner:{<sha256(principal)[:32]>}:sessions``: member = the
session id, score = when the session last got a version (or was created or renamed). It lives
in its own Redis Cluster slot, so it cannot be updated by the session scripts atomically:
it is written after them, and read as a hint. A listed id whose session has expired or was
deleted (meta gone) is dropped from the set when a listing meets it.

Expiry: the set's own TTL is twice the session TTL, refreshed on every write and listing, so
a principal who stops coming back leaves nothing behind, while a session kept alive by
edits always has a listed id (every edit refreshes the set).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from .errors import redis_guard
from .records import SessionMeta


class SessionIndex:
    """The per-principal sorted set of session ids (newest change first)."""

    def __init__(self, redis: Any, ttl_s: int, *, prefix: str = "lvi") -> None:
        self.redis = redis
        self.ttl_s = 2 * ttl_s
        self.prefix = prefix

    def key(self, principal: str) -> str:
        # Hashed: a principal name may hold any character; braces make it one cluster slot.
        digest = hashlib.sha256(principal.encode()).hexdigest()[:32]
        return f"{self.prefix}:owner:{{{digest}}}:sessions"

    async def touch(self, principal: str, sid: str, when: float | None = None) -> None:
        """Record a change of ``sid`` (created, new version, renamed)."""
        key = self.key(principal)
        with redis_guard():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {sid: when if when is not None else time.time()})
                pipe.expire(key, self.ttl_s)
                await pipe.execute()

    async def forget(self, principal: str, *sids: str) -> None:
        if sids:
            with redis_guard():
                await self.redis.zrem(self.key(principal), *sids)

    async def ids(self, principal: str, start: int, count: int) -> list[str]:
        """``count`` ids from position ``start``, newest change first."""
        key = self.key(principal)
        with redis_guard():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrevrange(key, start, start + count - 1)
                pipe.expire(key, self.ttl_s)
                raw, _ = await pipe.execute()
        return [r.decode() if isinstance(r, bytes) else str(r) for r in raw]


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def meta_from_hash(sid: str, raw: dict[Any, Any]) -> SessionMeta | None:
    """A session's meta from its hash, ``None`` when the hash is gone."""
    data = {_s(k): _s(v) for k, v in raw.items()}
    if not data:
        return None
    head = data.get("head") or ""
    return SessionMeta(
        id=sid,
        owner=data.get("owner", ""),
        title=data.get("title") or None,
        created_at=float(data.get("created_at") or 0),
        updated_at=float(data.get("updated_at") or 0),
        head=int(head) if head else None,
        nversions=int(data.get("nversions") or 0),
        bytes=int(data.get("bytes") or 0),
    )
