"""Sessions in Redis: ownership, image versions, head with undo/redo, masks, chat, idempotency.

Key layout (every key of a session shares the hash tag ``{<session id>}``, so a session lives
in one Redis Cluster slot and one Lua script (``lua/*.lua``) may touch all its keys atomically):

=============================  ======  ==========================================================
``lvi:{sid}:meta``             hash    owner, title, created_at, updated_at, head, next, nversions,
                                       bytes (images + masks)
``lvi:{sid}:versions``         hash    version id -> JSON record (parent, operation, params, seed,
                                       image hash, size, time)
``lvi:{sid}:images``           hash    sha256 -> image bytes (stored once per session)
``lvi:{sid}:redo``             list    versions undone from, most recent last (cleared by commits)
``lvi:{sid}:masks``            hash    mask id -> JSON record
``lvi:{sid}:maskdata``         hash    mask id -> PNG bytes
``lvi:{sid}:messages``         list    chat messages (JSON), oldest first
``lvi:{sid}:idem:<sha>``       string  an Idempotency-Key's state (own TTL)
=============================  ======  ==========================================================

Every write is one Lua script that checks the owner, applies the change, records the
idempotency result if any, and refreshes the TTL of every key, so a commit is atomic and two
concurrent edits of one head can never both win: the script compares the head it expects
with the head it finds (409 otherwise). Versions are never deleted; undo, redo and checkout
only move the head.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from redis import exceptions as redis_errors

from lvi.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable

from ..settings import GatewaySettings
from .connection import connect_redis
from .errors import is_oom, raise_for_status, redis_guard
from .keys import VID_PLACEHOLDER, SessionKeys
from .records import IdemClaim, IdemReplay, MaskRecord, MessageRecord, SessionMeta, VersionRecord
from .scripts import load_scripts


class _Booking:
    """Whether the write a byte reservation was made for succeeded."""

    ok = False


def _s(v: bytes | str | None) -> str:
    if v is None:
        return ""
    return v.decode() if isinstance(v, bytes) else str(v)


class SessionStore:
    """All session state, in Redis. Every method raises our errors (404/409/413/503)."""

    def __init__(self, redis: Any, settings: GatewaySettings, *, prefix: str = "lvi") -> None:
        self.redis = redis
        # Per-principal quotas (gateway.quotas.Quotas), set by create_app; None: none enforced.
        self.quotas: Any = None
        self.settings = settings
        self.prefix = prefix
        # register_script only hashes the source; the script is sent on its first use.
        lua = load_scripts()
        self._create = redis.register_script(lua["create"])
        self._commit = redis.register_script(lua["commit"])
        self._move_head = redis.register_script(lua["move_head"])
        self._add_mask = redis.register_script(lua["add_mask"])
        self._append = redis.register_script(lua["append_messages"])
        self._delete = redis.register_script(lua["delete"])
        self._clear_messages = redis.register_script(lua["clear_messages"])
        self._release = redis.register_script(lua["release"])

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> SessionStore:
        """Connect lazily to ``settings.redis_url`` (a cluster when ``redis_cluster``)."""
        return cls(connect_redis(settings), settings)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    def keys(self, sid: str) -> SessionKeys:
        return SessionKeys(sid, self.prefix)

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False

    async def write_probe(self) -> str:
        """``ok``, ``full`` (Redis answers but refuses writes: maxmemory) or ``unreachable``:
        a PING answers even when every write would fail, so readiness writes a tiny key."""
        try:
            await self.redis.set(f"{self.prefix}:readyz", b"1", px=10_000)
            return "ok"
        except redis_errors.RedisError as e:
            if is_oom(e):
                return "full"
            return "unreachable"

    # -- sessions ---------------------------------------------------------------------------
    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(12)

    async def create(
        self, owner: str, sid: str, title: str | None, fingerprint: str = ""
    ) -> tuple[SessionMeta, bool]:
        """Create session ``sid``; if it exists (an idempotent retry) return it, created=False.
        An id that exists under another owner is a 409 (ids are random; this is a key reuse);
        one created by a different request (``fingerprint``: an Idempotency-Key reused with
        another body) is a 422, as on every other route."""
        now = time.time()
        counted = False
        if self.quotas is not None:  # count it first (429 over the sessions quota)
            counted = await self.quotas.add_session(owner, sid)
        try:
            with redis_guard():
                status, value, *first_fp = await self._create(
                    keys=self.keys(sid).all(),
                    args=[owner, repr(now), self.settings.session_ttl_s, title or "", fingerprint],
                )
            if _s(status) == "exists" and _s(value) != owner:
                raise Conflict("This session id is taken.", code="session_exists")
            first = _s(first_fp[0]) if first_fp else ""
            if _s(status) == "exists" and fingerprint and first and first != fingerprint:
                raise Unprocessable(
                    "This Idempotency-Key was already used with a different request.",
                    code="idempotency_key_reused",
                    param="Idempotency-Key",
                )
        except BaseException:
            if counted:
                await self.quotas.forget_session(owner, sid)
            raise
        return await self.meta(sid, owner), _s(status) == "ok"

    async def meta(self, sid: str, owner: str) -> SessionMeta:
        """The session's meta; 404 when it does not exist or belongs to someone else."""
        with redis_guard():
            raw = await self.redis.hgetall(self.keys(sid).meta)
        data = {_s(k): _s(v) for k, v in raw.items()}
        if not data or data.get("owner") != owner:
            raise NotFound(f"Session {sid} not found.", code="session_not_found", param="session")
        head = data.get("head") or ""
        return SessionMeta(
            id=sid,
            owner=owner,
            title=data.get("title") or None,
            created_at=float(data.get("created_at") or 0),
            updated_at=float(data.get("updated_at") or 0),
            head=int(head) if head else None,
            nversions=int(data.get("nversions") or 0),
            bytes=int(data.get("bytes") or 0),
        )

    async def delete(self, sid: str, owner: str) -> None:
        with redis_guard():
            status, _ = await self._delete(keys=self.keys(sid).all(), args=[owner])
        if _s(status) != "ok":
            raise NotFound(f"Session {sid} not found.", code="session_not_found", param="session")
        if self.quotas is not None:  # its bytes and its session slot are free at once
            await self.quotas.forget_session(owner, sid)

    async def snapshot(
        self, sid: str
    ) -> tuple[list[VersionRecord], list[MaskRecord], list[MessageRecord], int, int]:
        """Versions, masks, messages, redo depth and TTL (seconds) in one round trip."""
        k = self.keys(sid)
        with redis_guard():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(k.versions)
                pipe.hgetall(k.masks)
                pipe.lrange(k.messages, 0, -1)
                pipe.llen(k.redo)
                pipe.ttl(k.meta)
                versions, masks, messages, redo, ttl = await pipe.execute()
        vs = sorted(
            (self._version(int(_s(vid)), raw) for vid, raw in versions.items()), key=lambda v: v.id
        )
        ms = sorted(
            (MaskRecord.model_validate_json(raw) for raw in masks.values()),
            key=lambda m: m.created_at,
        )
        msgs = [MessageRecord.model_validate_json(raw) for raw in messages]
        return vs, ms, msgs, int(redo), int(ttl)

    # -- versions and images ----------------------------------------------------------------
    @staticmethod
    def _version(vid: int, raw: bytes | str) -> VersionRecord:
        rec = VersionRecord.model_validate_json(raw)
        rec.id = vid
        return rec

    async def version(self, sid: str, vid: int) -> VersionRecord:
        with redis_guard():
            raw = await self.redis.hget(self.keys(sid).versions, str(vid))
        if raw is None:
            raise NotFound(
                f"Version {vid} not found in session {sid}.",
                code="version_not_found",
                param="version",
            )
        return self._version(vid, raw)

    async def image(self, sid: str, rec: VersionRecord) -> bytes:
        with redis_guard():
            data = await self.redis.hget(self.keys(sid).images, rec.image_hash)
        if data is None:  # only if the session expired between two reads
            raise NotFound(f"Session {sid} not found.", code="session_not_found")
        return bytes(data)

    async def commit_version(
        self,
        sid: str,
        owner: str,
        *,
        expected_head: int | None,
        record: VersionRecord,
        image: bytes,
        idem: IdemClaim | None = None,
        mask: tuple[MaskRecord, bytes] | None = None,
    ) -> VersionRecord:
        """Atomically add a version and make it the head, if the head is still ``expected_head``.

        ``record.id`` is ignored: the script allocates the next id. A mask given here (e.g. the
        object's mask after a move) is stored as made on the new version.
        """
        now = time.time()
        body = record.model_dump_json(exclude={"id"})
        mask_id, mask_json, mask_bytes = "", "", b""
        if mask is not None:
            mrec, mask_bytes = mask
            mask_id = mrec.mask_id
            mask_json = (
                mrec.model_dump_json(exclude={"version"})[:-1]
                + ',"version":'
                + VID_PLACEHOLDER
                + "}"
            )
        booked = len(mask_bytes)
        with redis_guard():  # an image the session already holds is stored once: not booked
            if not await self.redis.hexists(self.keys(sid).images, record.image_hash):
                booked += len(image)
        async with self._booking(owner, sid, booked) as book:
            status, value = await self._commit(
                keys=self.keys(sid).all(idem.key if idem else None),
                args=[
                    owner,
                    "" if expected_head is None else str(expected_head),
                    body,
                    record.image_hash,
                    image,
                    self.settings.max_versions,
                    self.settings.max_session_bytes,
                    self.settings.session_ttl_s,
                    repr(now),
                    idem.done_version() if idem else "",
                    self.settings.idempotency_ttl_s * 1000,
                    mask_id,
                    mask_json,
                    mask_bytes,
                ],
            )
            book.ok = _s(status) == "ok"
        raise_for_status(_s(status), _s(value), sid, self.settings)
        record = record.model_copy(update={"id": int(_s(value))})
        return record

    async def move_head(
        self,
        sid: str,
        owner: str,
        action: str,
        *,
        expected_head: int | str | None = "*",
        target: int | None = None,
        idem: IdemClaim | None = None,
    ) -> int:
        """Undo, redo or checkout; returns the new head. Nothing to undo/redo is a 409.
        With ``idem`` the new head is recorded as the request's result in the same script."""
        expected = (
            "*" if expected_head == "*" else ("" if expected_head is None else str(expected_head))
        )
        with redis_guard():
            status, value = await self._move_head(
                keys=self.keys(sid).all(idem.key if idem else None),
                args=[
                    owner,
                    action,
                    expected,
                    "" if target is None else str(target),
                    repr(time.time()),
                    self.settings.session_ttl_s,
                    idem.done_version() if idem else "",
                    self.settings.idempotency_ttl_s * 1000,
                ],
            )
        st, val = _s(status), _s(value)
        if st == "nothing":
            raise Conflict(f"Nothing to {action}.", code=f"nothing_to_{action}")
        if st == "missing":
            raise NotFound(
                f"Version {target} not found in session {sid}.",
                code="version_not_found",
                param="version",
            )
        raise_for_status(st, val, sid, self.settings)
        return int(val)

    @contextlib.asynccontextmanager
    async def _booking(self, owner: str, sid: str, nbytes: int) -> AsyncIterator[_Booking]:
        """Reserve ``nbytes`` against the owner's bytes quota (507) around a write (in
        ``redis_guard``); given back unless the block sets ``ok``."""
        book = _Booking()
        if self.quotas is not None:
            await self.quotas.reserve_bytes(owner, sid, nbytes)
        try:
            with redis_guard():
                yield book
        finally:
            if not book.ok and self.quotas is not None:
                await self.quotas.release_bytes(owner, sid, nbytes)

    # -- masks ------------------------------------------------------------------------------
    async def add_mask(
        self,
        sid: str,
        owner: str,
        record: MaskRecord,
        data: bytes,
        *,
        idem: IdemClaim | None = None,
        idem_body: Any = None,
    ) -> MaskRecord:
        async with self._booking(owner, sid, len(data)) as book:
            status, value = await self._add_mask(
                keys=self.keys(sid).all(idem.key if idem else None),
                args=[
                    owner,
                    record.mask_id,
                    record.model_dump_json(),
                    data,
                    self.settings.max_session_bytes,
                    repr(time.time()),
                    self.settings.session_ttl_s,
                    idem.done_body(201, idem_body) if idem and idem_body is not None else "",
                    self.settings.idempotency_ttl_s * 1000,
                ],
            )
            book.ok = _s(status) == "ok"
        raise_for_status(_s(status), _s(value), sid, self.settings)
        return record

    async def mask(self, sid: str, mask_id: str) -> tuple[MaskRecord, bytes]:
        k = self.keys(sid)
        with redis_guard():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hget(k.masks, mask_id)
                pipe.hget(k.maskdata, mask_id)
                raw, data = await pipe.execute()
        if raw is None or data is None:
            raise NotFound(
                f"Mask {mask_id} not found in session {sid}.",
                code="mask_not_found",
                param="mask_id",
            )
        return MaskRecord.model_validate_json(raw), bytes(data)

    # -- chat -------------------------------------------------------------------------------
    async def messages(self, sid: str, last: int | None = None) -> list[MessageRecord]:
        start = -last if last else 0
        if last == 0:
            return []
        with redis_guard():
            raw = await self.redis.lrange(self.keys(sid).messages, start, -1)
        return [MessageRecord.model_validate_json(r) for r in raw]

    async def append_messages(
        self,
        sid: str,
        owner: str,
        messages: list[MessageRecord],
        *,
        idem: IdemClaim | None = None,
        idem_body: Any = None,
    ) -> None:
        with redis_guard():
            status, value = await self._append(
                keys=self.keys(sid).all(idem.key if idem else None),
                args=[
                    owner,
                    repr(time.time()),
                    self.settings.session_ttl_s,
                    self.settings.max_messages,
                    idem.done_body(200, idem_body) if idem and idem_body is not None else "",
                    self.settings.idempotency_ttl_s * 1000,
                    *[m.model_dump_json() for m in messages],
                ],
            )
        raise_for_status(_s(status), _s(value), sid, self.settings)

    async def clear_messages(self, sid: str, owner: str) -> None:
        """Forget the conversation; versions and masks stay."""
        with redis_guard():
            status, value = await self._clear_messages(
                keys=self.keys(sid).all(),
                args=[owner, repr(time.time()), self.settings.session_ttl_s],
            )
        raise_for_status(_s(status), _s(value), sid, self.settings)

    # -- idempotency ------------------------------------------------------------------------
    async def idem_begin(
        self, sid: str, principal: str, key: str, fingerprint: str, lock_s: float
    ) -> IdemClaim | IdemReplay:
        """Claim ``key`` for this request, or return the first request's result.

        The same key with a different request is a 422; a key whose first request is still
        running is a 409 (retry later). A claim expires after ``lock_s`` so a crashed gateway
        never blocks a key for good.
        """
        import hashlib

        digest = hashlib.sha256(f"{principal}\0{key}".encode()).hexdigest()[:32]
        rkey = self.keys(sid).idem(digest)
        pending = json.dumps({"state": "pending", "fp": fingerprint, "token": secrets.token_hex(8)})
        with redis_guard():
            for _ in range(3):
                if await self.redis.set(rkey, pending, nx=True, px=int(lock_s * 1000)):
                    return IdemClaim(rkey, fingerprint, pending)
                raw = await self.redis.get(rkey)
                if raw is not None:
                    break
            else:  # pragma: no cover - the key kept expiring between SET and GET
                raise ServiceUnavailable("Could not claim the Idempotency-Key; retry.")
        rec = json.loads(raw)
        if rec.get("fp") != fingerprint:
            raise Unprocessable(
                "This Idempotency-Key was already used with a different request.",
                code="idempotency_key_reused",
                param="Idempotency-Key",
            )
        if rec.get("state") != "done":
            raise Conflict(
                "A request with this Idempotency-Key is still running; retry shortly.",
                code="idempotency_in_progress",
                param="Idempotency-Key",
                headers={"Retry-After": "1"},
            )
        if rec.get("kind") == "version":
            return IdemReplay("version", version=int(rec["version"]), status=201)
        return IdemReplay("body", status=int(rec.get("status", 200)), body=rec.get("body"))

    async def idem_release(self, claim: IdemClaim) -> None:
        """Give the key back after a failure, so that a retry runs the request again."""
        with contextlib.suppress(Exception):
            await self._release(keys=[claim.key], args=[claim.pending])
