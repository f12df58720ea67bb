"""Quotas per principal, enforced atomically in Redis: bytes stored, live sessions and
concurrent long jobs (the per-session caps and the request rate live elsewhere: the session
scripts and :mod:`gateway.ratelimit`).

Keys (one hash tag per principal, so each quota script touches one Cluster slot):

=================================  ======  ===================================================
``lvi:{q:<principal>}:sessions``   zset    session id -> when it expires (ms)
``lvi:{q:<principal>}:bytes``      hash    session id -> image + mask bytes stored
``lvi:{q:<principal>}:jobs``       zset    job token -> end of its lease (ms)
=================================  ======  ===================================================

A session's keys live in its own slot, so the quota check and the session write are two
atomic steps: bytes are *reserved* before a commit and given back if the commit fails.
Sessions that expire (TTL) are dropped from the principal's sets lazily, by the next quota
script; since any write refreshes a session's TTL, expired-looking entries are first checked
against the session itself (:meth:`Quotas.reconcile`) so a live session is never forgotten.

Limits come from ``GATEWAY_QUOTA_*`` (defaults) and ``GATEWAY_QUOTAS`` (per principal):
``alice:bytes=1GiB,sessions=50;*:jobs=2`` (``*`` overrides the defaults for everyone; ``0``
means no limit). Over a quota: 507 ``quota_exceeded`` for bytes, 429 ``quota_exceeded`` for
sessions and jobs, ``param`` naming the quota.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import anyio

from lvi.errors import InsufficientStorage, LviError, RateLimited
from lvi_client.models import QuotaUsage, Usage

from .metrics import GatewayMetrics
from .sessions.errors import redis_guard
from .sessions.keys import SessionKeys
from .sessions.scripts import load_scripts
from .settings import GatewaySettings

log = logging.getLogger("lvi.gateway.quotas")

#: The workflows that count as long jobs (they hold a GPU worker for seconds to minutes).
LONG_JOBS = frozenset({"generate", "inpaint", "remove", "replace", "move"})

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9}
_UNITS |= {"gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_UNITS |= {"tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_KEEP_DAYS_MS = 24 * 3600 * 1000  # quota keys outlive the longest session TTL by a day


def parse_size(text: str) -> int:
    """``"1GiB"`` -> 1073741824; ``"500MB"`` -> 500000000; a bare number is bytes."""
    m = _SIZE.match(text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (e.g. 512MiB, 2GiB, 1000000)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@dataclass(frozen=True)
class Limits:
    """One principal's quotas (0 = no limit)."""

    bytes: int
    sessions: int
    jobs: int


class QuotaTable:
    """Limits per principal: the defaults, ``*`` overrides, then per-principal overrides."""

    def __init__(self, default: Limits, overrides: dict[str, dict[str, int]]) -> None:
        self.default = replace(default, **overrides.get("*", {}))
        self.overrides = overrides

    @classmethod
    def from_settings(cls, s: GatewaySettings) -> QuotaTable:
        default = Limits(bytes=s.quota_bytes, sessions=s.quota_sessions, jobs=s.quota_jobs)
        return cls(default, parse_quotas(s.quotas))

    def limits(self, principal: str) -> Limits:
        return replace(self.default, **self.overrides.get(principal, {}))


def parse_quotas(text: str) -> dict[str, dict[str, int]]:
    """``"alice:bytes=1GiB,sessions=50;*:jobs=2"`` -> ``{"alice": {...}, "*": {...}}``."""
    out: dict[str, dict[str, int]] = {}
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        who, sep, rest = entry.partition(":")
        if not sep or not who.strip():
            raise ValueError(f"quota entry {entry!r}: expected principal:name=value,...")
        items: dict[str, int] = {}
        for pair in filter(None, (p.strip() for p in rest.split(","))):
            name, eq, value = pair.partition("=")
            name = name.strip().lower()
            if not eq or name not in ("bytes", "sessions", "jobs"):
                raise ValueError(f"quota {pair!r}: expected bytes=, sessions= or jobs=")
            items[name] = parse_size(value) if name == "bytes" else int(value)
        out[who.strip()] = items
    return out


class Quotas:
    """Checks and books a principal's bytes, sessions and long jobs (see the module doc)."""

    def __init__(
        self,
        redis: Any,
        settings: GatewaySettings,
        metrics: GatewayMetrics | None = None,
        *,
        prefix: str = "lvi",
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.metrics = metrics
        self.prefix = prefix
        self.table = QuotaTable.from_settings(settings)
        lua = load_scripts()
        self._session = redis.register_script(lua["quota_session"])
        self._bytes = redis.register_script(lua["quota_bytes"])
        self._job = redis.register_script(lua["quota_job"])

    def _k(self, principal: str, name: str) -> str:
        return f"{self.prefix}:{{q:{principal}}}:{name}"

    def _expiry_ms(self, now_ms: int) -> int:
        return now_ms + self.settings.session_ttl_s * 1000

    def _keep_ms(self) -> int:
        return self.settings.session_ttl_s * 1000 + _KEEP_DAYS_MS

    def _refuse(self, quota: str, err: LviError) -> LviError:
        log.warning("quota exceeded: %s", err.message)
        if self.metrics is not None:
            self.metrics.quota_exceeded.labels(quota).inc()
        return err

    async def reconcile(self, principal: str) -> None:
        """Re-date sessions whose recorded expiry passed but which still live (their TTL was
        refreshed by a write that books no bytes, e.g. chat or undo), so that the scripts'
        lazy cleanup drops only sessions that are really gone."""
        now = int(time.time() * 1000)
        key = self._k(principal, "sessions")
        with redis_guard():
            due = await self.redis.zrangebyscore(key, "-inf", now)
            for raw in due:
                sid = raw.decode() if isinstance(raw, bytes) else str(raw)
                ttl = await self.redis.pttl(SessionKeys(sid, self.prefix).meta)
                if ttl > 0:
                    await self.redis.zadd(key, {sid: now + int(ttl)})

    # -- sessions ---------------------------------------------------------------------------
    async def add_session(self, principal: str, sid: str) -> bool:
        """Count ``sid``; True when it was not counted yet (False: a retried create). 429
        ``quota_exceeded`` (param ``sessions``) when the principal already has its maximum of
        live sessions."""
        limits = self.table.limits(principal)
        await self.reconcile(principal)
        now = int(time.time() * 1000)
        with redis_guard():
            status, value = await self._session(
                keys=[self._k(principal, "sessions"), self._k(principal, "bytes")],
                args=[now, sid, self._expiry_ms(now), limits.sessions, self._keep_ms()],
            )
        if _s(status) == "ok":
            return _s(value) == "new"
        raise self._refuse(
            "sessions",
            RateLimited(
                f"This API key has {_s(value)} live sessions, its quota of "
                f"{limits.sessions}; delete sessions you no longer need.",
                code="quota_exceeded",
                param="sessions",
                retry_after=60,
            ),
        )

    async def forget_session(self, principal: str, sid: str) -> None:
        """A deleted session no longer counts (its bytes are released at once)."""
        with contextlib.suppress(Exception):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrem(self._k(principal, "sessions"), sid)
                pipe.hdel(self._k(principal, "bytes"), sid)
                await pipe.execute()

    # -- bytes ------------------------------------------------------------------------------
    async def reserve_bytes(self, principal: str, sid: str, nbytes: int) -> None:
        """Book ``nbytes`` more for ``sid``; 507 ``quota_exceeded`` (param ``bytes``) when the
        principal's stored bytes would pass its quota."""
        if nbytes <= 0:
            return
        limits = self.table.limits(principal)
        await self.reconcile(principal)
        now = int(time.time() * 1000)
        with redis_guard():
            status, value = await self._bytes(
                keys=[self._k(principal, "sessions"), self._k(principal, "bytes")],
                args=[now, sid, nbytes, limits.bytes, self._expiry_ms(now), self._keep_ms()],
            )
        if _s(status) != "ok":
            raise self._refuse(
                "bytes",
                InsufficientStorage(
                    f"This API key stores {_s(value)} bytes; {nbytes} more would pass its "
                    f"quota of {limits.bytes} bytes. Delete sessions you no longer need.",
                    code="quota_exceeded",
                    param="bytes",
                ),
            )

    async def release_bytes(self, principal: str, sid: str, nbytes: int) -> None:
        """Give back a reservation whose write failed (never raises)."""
        if nbytes <= 0:
            return
        now = int(time.time() * 1000)
        with contextlib.suppress(Exception):
            await self._bytes(
                keys=[self._k(principal, "sessions"), self._k(principal, "bytes")],
                args=[now, sid, -nbytes, 0, self._expiry_ms(now), self._keep_ms()],
            )

    # -- long jobs --------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def job(self, principal: str, workflow: str, lease_s: float) -> AsyncIterator[None]:
        """Hold one of the principal's concurrent long-job slots while the block runs (429
        ``quota_exceeded``, param ``jobs``, when all are taken). Other workflows pass."""
        limits = self.table.limits(principal)
        if workflow not in LONG_JOBS or limits.jobs <= 0:
            yield
            return
        key = self._k(principal, "jobs")
        token = secrets.token_hex(8)
        now = int(time.time() * 1000)
        with redis_guard():
            status, value = await self._job(
                keys=[key], args=[now, token, now + int(lease_s * 1000), limits.jobs]
            )
        if _s(status) != "ok":
            raise self._refuse(
                "jobs",
                RateLimited(
                    f"This API key already runs {_s(value)} long jobs (generate, inpaint, "
                    f"remove, replace, move), its quota of {limits.jobs}; retry when one ends.",
                    code="quota_exceeded",
                    param="jobs",
                    retry_after=2,
                ),
            )
        try:
            yield
        finally:
            # Shielded: a dropped stream cancels the caller, and the slot must still be freed.
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self.redis.zrem(key, token)

    # -- where a principal stands -----------------------------------------------------------
    async def usage(self, principal: str) -> Usage:
        """Bytes, live sessions and running jobs against the principal's quotas (reads only)."""
        limits = self.table.limits(principal)
        with contextlib.suppress(Exception):  # a full store still answers (without re-dating)
            await self.reconcile(principal)
        now = int(time.time() * 1000)
        with redis_guard():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrangebyscore(self._k(principal, "sessions"), now, "+inf")
                pipe.hgetall(self._k(principal, "bytes"))
                pipe.zcount(self._k(principal, "jobs"), now, "+inf")
                live, per_session, jobs = await pipe.execute()
        alive = {_s(x) for x in live}
        used = sum(int(v) for k, v in per_session.items() if _s(k) in alive)
        s = self.settings
        return Usage(
            principal=principal,
            bytes=QuotaUsage(used=used, limit=limits.bytes or None),
            sessions=QuotaUsage(used=len(alive), limit=limits.sessions or None),
            jobs=QuotaUsage(used=int(jobs), limit=limits.jobs or None),
            max_versions_per_session=s.max_versions,
            max_session_bytes=s.max_session_bytes,
            rate_limit_per_minute=s.rate_limit_per_minute or None,
        )


def _s(v: bytes | str | int | None) -> str:
    if v is None:
        return ""
    return v.decode() if isinstance(v, bytes) else str(v)


__all__ = ["LONG_JOBS", "Limits", "QuotaTable", "Quotas", "parse_quotas", "parse_size"]
