"""Sessions in Redis: ownership, image versions, head with undo/redo, masks, chat, idempotency.

Key layout (every key of a session shares the hash tag ``{<session id>}``, so a session lives
in one Redis Cluster slot and the Lua scripts below may touch all its keys atomically):

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
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, Field
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from lvi.errors import Conflict, NotFound, PayloadTooLarge, ServiceUnavailable, Unprocessable
from lvi.images import MIME_TYPES, EncodedImage, EncodedMask

from .settings import GatewaySettings

log = logging.getLogger("lvi.gateway.sessions")

_VID = '"__VID__"'  # placeholder the scripts replace with the new version id

# Lua: KEYS[1..7] are the session's keys in SessionKeys.all() order, KEYS[8] the idempotency
# key (a dummy in the same slot when there is none). Every script starts with the owner check.
_PRELUDE = """
local function touch(ttl)
  for i = 1, 7 do redis.call('EXPIRE', KEYS[i], ttl) end
end
local function owned(owner)
  return redis.call('HGET', KEYS[1], 'owner') == owner
end
local function remember(value, ttl, vid)
  if value ~= '' then
    if vid then value = (string.gsub(value, '"__VID__"', tostring(vid))) end
    redis.call('SET', KEYS[8], value, 'PX', ttl)
  end
end
"""

_CREATE = (
    _PRELUDE
    + """
-- ARGV: owner, now, ttl, title
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'exists', redis.call('HGET', KEYS[1], 'owner') or ''}
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'created_at', ARGV[2], 'updated_at', ARGV[2],
  'head', '', 'next', 0, 'nversions', 0, 'bytes', 0, 'title', ARGV[4])
touch(tonumber(ARGV[3]))
return {'ok', ''}
"""
)

_COMMIT = (
    _PRELUDE
    + """
-- ARGV: owner, expected head ('*' = any), record json, image sha, image bytes, max versions,
--       max bytes, ttl, now, idem value, idem ttl ms, mask id, mask json, mask bytes
if not owned(ARGV[1]) then return {'gone', ''} end
local head = redis.call('HGET', KEYS[1], 'head') or ''
if ARGV[2] ~= '*' and head ~= ARGV[2] then return {'conflict', head} end
local n = tonumber(redis.call('HGET', KEYS[1], 'nversions') or '0')
if n >= tonumber(ARGV[6]) then return {'versions_cap', tostring(n)} end
local used = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
local add = 0
if redis.call('HEXISTS', KEYS[3], ARGV[4]) == 0 then add = add + string.len(ARGV[5]) end
if ARGV[12] ~= '' then add = add + string.len(ARGV[14]) end
if used + add > tonumber(ARGV[7]) then return {'bytes_cap', tostring(used)} end
local vid = redis.call('HINCRBY', KEYS[1], 'next', 1)
redis.call('HSETNX', KEYS[3], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[2], vid, ARGV[3])
if ARGV[12] ~= '' then
  redis.call('HSET', KEYS[5], ARGV[12], (string.gsub(ARGV[13], '"__VID__"', tostring(vid))))
  redis.call('HSET', KEYS[6], ARGV[12], ARGV[14])
end
redis.call('HSET', KEYS[1], 'head', vid, 'updated_at', ARGV[9], 'nversions', n + 1,
  'bytes', used + add)
redis.call('DEL', KEYS[4])
remember(ARGV[10], ARGV[11], vid)
touch(tonumber(ARGV[8]))
return {'ok', tostring(vid)}
"""
)

_MOVE_HEAD = (
    _PRELUDE
    + """
-- ARGV: owner, action (undo|redo|checkout), expected head ('*' = any), target, now, ttl,
--       idem value, idem ttl ms
if not owned(ARGV[1]) then return {'gone', ''} end
local head = redis.call('HGET', KEYS[1], 'head') or ''
if ARGV[3] ~= '*' and head ~= ARGV[3] then return {'conflict', head} end
local new = nil
if ARGV[2] == 'undo' then
  if head == '' then return {'nothing', head} end
  local rec = cjson.decode(redis.call('HGET', KEYS[2], head))
  if rec['parent'] == nil or rec['parent'] == cjson.null then return {'nothing', head} end
  new = tostring(rec['parent'])
  redis.call('RPUSH', KEYS[4], head)
elseif ARGV[2] == 'redo' then
  new = redis.call('RPOP', KEYS[4])
  if not new then return {'nothing', head} end
else
  if redis.call('HEXISTS', KEYS[2], ARGV[4]) == 0 then return {'missing', head} end
  new = ARGV[4]
  if new ~= head then redis.call('DEL', KEYS[4]) end
end
redis.call('HSET', KEYS[1], 'head', new, 'updated_at', ARGV[5])
remember(ARGV[7], ARGV[8], new)
touch(tonumber(ARGV[6]))
return {'ok', new}
"""
)

_ADD_MASK = (
    _PRELUDE
    + """
-- ARGV: owner, mask id, mask json, mask bytes, max bytes, now, ttl, idem value, idem ttl ms
if not owned(ARGV[1]) then return {'gone', ''} end
local used = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
local add = string.len(ARGV[4])
if used + add > tonumber(ARGV[5]) then return {'bytes_cap', tostring(used)} end
redis.call('HSET', KEYS[5], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[6], ARGV[2], ARGV[4])
redis.call('HSET', KEYS[1], 'bytes', used + add, 'updated_at', ARGV[6])
remember(ARGV[8], ARGV[9], nil)
touch(tonumber(ARGV[7]))
return {'ok', ''}
"""
)

_APPEND_MESSAGES = (
    _PRELUDE
    + """
-- ARGV: owner, now, ttl, max messages, idem value, idem ttl ms, message json...
if not owned(ARGV[1]) then return {'gone', ''} end
for i = 7, #ARGV do redis.call('RPUSH', KEYS[7], ARGV[i]) end
redis.call('LTRIM', KEYS[7], -tonumber(ARGV[4]), -1)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
remember(ARGV[5], ARGV[6], nil)
touch(tonumber(ARGV[3]))
return {'ok', ''}
"""
)

_DELETE = (
    _PRELUDE
    + """
-- ARGV: owner
if not owned(ARGV[1]) then return {'gone', ''} end
for i = 1, 7 do redis.call('DEL', KEYS[i]) end
return {'ok', ''}
"""
)

_CLEAR_MESSAGES = (
    _PRELUDE
    + """
-- ARGV: owner, now, ttl
if not owned(ARGV[1]) then return {'gone', ''} end
redis.call('DEL', KEYS[7])
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
touch(tonumber(ARGV[3]))
return {'ok', ''}
"""
)

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# -- records --------------------------------------------------------------------------------
class VersionRecord(BaseModel):
    """A stored version. ``id`` is the hash field, not part of the stored JSON."""

    id: int = 0
    parent: int | None
    operation: str
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    image_hash: str
    format: str
    mode: str
    orientation: int = 1
    width: int
    height: int
    nbytes: int
    created_at: float
    mask_id: str | None = None

    @property
    def content_type(self) -> str:
        return MIME_TYPES.get(self.format, "application/octet-stream")

    def encoded(self, data: bytes) -> EncodedImage:
        """The stored bytes as an EncodedImage, without reading the header again."""
        return EncodedImage(data, self.format, self.width, self.height, self.mode, self.orientation)


class MaskRecord(BaseModel):
    """A stored mask (single-channel PNG)."""

    mask_id: str
    version: int | None
    source: str
    width: int
    height: int
    bbox: list[int] | None = None
    area: int | None = None
    score: float | None = None
    label: str | None = None
    created_at: float
    format: str = "PNG"
    mode: str = "L"
    nbytes: int = 0

    def encoded(self, data: bytes) -> EncodedMask:
        return EncodedMask(EncodedImage(data, self.format, self.width, self.height, self.mode))


class MessageRecord(BaseModel):
    role: str
    content: str
    version: int | None
    note: str | None = None
    created_at: float


@dataclass(frozen=True)
class SessionMeta:
    """The session's meta hash, decoded."""

    id: str
    owner: str
    title: str | None
    created_at: float
    updated_at: float
    head: int | None
    nversions: int
    bytes: int


@dataclass(frozen=True)
class SessionKeys:
    """Key names of one session; all share the hash tag ``{sid}``."""

    sid: str
    prefix: str = "lvi"

    def _k(self, name: str) -> str:
        return f"{self.prefix}:{{{self.sid}}}:{name}"

    @property
    def meta(self) -> str:
        return self._k("meta")

    @property
    def versions(self) -> str:
        return self._k("versions")

    @property
    def images(self) -> str:
        return self._k("images")

    @property
    def redo(self) -> str:
        return self._k("redo")

    @property
    def masks(self) -> str:
        return self._k("masks")

    @property
    def maskdata(self) -> str:
        return self._k("maskdata")

    @property
    def messages(self) -> str:
        return self._k("messages")

    def idem(self, digest: str) -> str:
        return self._k(f"idem:{digest}")

    def all(self, idem: str | None = None) -> list[str]:
        """KEYS of every script: the seven session keys, then the idempotency key."""
        return [
            self.meta,
            self.versions,
            self.images,
            self.redo,
            self.masks,
            self.maskdata,
            self.messages,
            idem or self._k("idem:-"),
        ]


@dataclass(frozen=True)
class IdemClaim:
    """We own an Idempotency-Key until we store a result or release it."""

    key: str
    fingerprint: str
    pending: str

    def done_version(self) -> str:
        """The stored result of a request that created a version (id filled in by Lua)."""
        return (
            '{"state":"done","fp":' + json.dumps(self.fingerprint) + ',"kind":"version",'
            '"version":' + _VID + "}"
        )

    def done_body(self, status: int, body: Any) -> str:
        return json.dumps(
            {
                "state": "done",
                "fp": self.fingerprint,
                "kind": "body",
                "status": status,
                "body": body,
            }
        )


@dataclass(frozen=True)
class IdemReplay:
    """A finished request with this Idempotency-Key: replay its result."""

    kind: str  # "version" | "body"
    version: int | None = None
    status: int = 200
    body: Any = None


def _s(v: bytes | str | None) -> str:
    if v is None:
        return ""
    return v.decode() if isinstance(v, bytes) else str(v)


# -- the store ------------------------------------------------------------------------------
class SessionStore:
    """All session state, in Redis. Every method raises our errors (404/409/413/503)."""

    def __init__(self, redis: Any, settings: GatewaySettings, *, prefix: str = "lvi") -> None:
        self.redis = redis
        self.settings = settings
        self.prefix = prefix
        self._create = redis.register_script(_CREATE)
        self._commit = redis.register_script(_COMMIT)
        self._move_head = redis.register_script(_MOVE_HEAD)
        self._add_mask = redis.register_script(_ADD_MASK)
        self._append = redis.register_script(_APPEND_MESSAGES)
        self._delete = redis.register_script(_DELETE)
        self._clear_messages = redis.register_script(_CLEAR_MESSAGES)
        self._release = redis.register_script(_RELEASE)

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> SessionStore:
        """Connect lazily to ``settings.redis_url`` (a cluster when ``redis_cluster``)."""
        return cls(connect_redis(settings), settings)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    def keys(self, sid: str) -> SessionKeys:
        return SessionKeys(sid, self.prefix)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Turn Redis being unreachable into a 503 the client can act on."""
        try:
            yield
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as e:
            log.warning("redis unavailable: %s", e)
            raise ServiceUnavailable(
                "The session store (Redis) is unavailable; retry shortly.",
                code="session_store_unavailable",
                headers={"Retry-After": "2"},
            ) from None
        except redis_errors.BusyLoadingError:
            raise ServiceUnavailable(
                "The session store (Redis) is loading its data; retry shortly.",
                code="session_store_loading",
                headers={"Retry-After": "2"},
            ) from None

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False

    # -- sessions ---------------------------------------------------------------------------
    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(12)

    async def create(self, owner: str, sid: str, title: str | None) -> tuple[SessionMeta, bool]:
        """Create session ``sid``; if it exists (an idempotent retry) return it, created=False.
        An id that exists under another owner is a 409 (ids are random; this is a key reuse)."""
        now = time.time()
        with self.guard():
            status, value = await self._create(
                keys=self.keys(sid).all(),
                args=[owner, repr(now), self.settings.session_ttl_s, title or ""],
            )
        if _s(status) == "exists" and _s(value) != owner:
            raise Conflict("This session id is taken.", code="session_exists")
        return await self.meta(sid, owner), _s(status) == "ok"

    async def meta(self, sid: str, owner: str) -> SessionMeta:
        """The session's meta; 404 when it does not exist or belongs to someone else."""
        with self.guard():
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
        with self.guard():
            status, _ = await self._delete(keys=self.keys(sid).all(), args=[owner])
        if _s(status) != "ok":
            raise NotFound(f"Session {sid} not found.", code="session_not_found", param="session")

    async def snapshot(
        self, sid: str
    ) -> tuple[list[VersionRecord], list[MaskRecord], list[MessageRecord], int, int]:
        """Versions, masks, messages, redo depth and TTL (seconds) in one round trip."""
        k = self.keys(sid)
        with self.guard():
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
        with self.guard():
            raw = await self.redis.hget(self.keys(sid).versions, str(vid))
        if raw is None:
            raise NotFound(
                f"Version {vid} not found in session {sid}.",
                code="version_not_found",
                param="version",
            )
        return self._version(vid, raw)

    async def image(self, sid: str, rec: VersionRecord) -> bytes:
        with self.guard():
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
            mask_json = mrec.model_dump_json(exclude={"version"})[:-1] + ',"version":' + _VID + "}"
        with self.guard():
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
        self._raise_for(_s(status), _s(value), sid)
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
        with self.guard():
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
        self._raise_for(st, val, sid)
        return int(val)

    def _raise_for(self, status: str, value: str, sid: str) -> None:
        if status == "ok":
            return
        if status == "gone":
            raise NotFound(f"Session {sid} not found.", code="session_not_found")
        if status == "conflict":
            raise Conflict(
                f"The session's head moved (it is now {value or 'empty'}); reload and retry.",
                code="head_moved",
                param="If-Match",
            )
        if status == "versions_cap":
            raise Conflict(
                f"The session has reached its limit of {self.settings.max_versions} versions; "
                "start a new session.",
                code="version_limit",
            )
        if status == "bytes_cap":
            raise PayloadTooLarge(
                f"The session has reached its storage limit of "
                f"{self.settings.max_session_bytes} bytes; start a new session.",
                code="session_storage_full",
            )
        raise ServiceUnavailable(f"Unexpected store answer {status!r}.")  # pragma: no cover

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
        with self.guard():
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
        self._raise_for(_s(status), _s(value), sid)
        return record

    async def mask(self, sid: str, mask_id: str) -> tuple[MaskRecord, bytes]:
        k = self.keys(sid)
        with self.guard():
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
        with self.guard():
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
        with self.guard():
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
        self._raise_for(_s(status), _s(value), sid)

    async def clear_messages(self, sid: str, owner: str) -> None:
        """Forget the conversation; versions and masks stay."""
        with self.guard():
            status, value = await self._clear_messages(
                keys=self.keys(sid).all(),
                args=[owner, repr(time.time()), self.settings.session_ttl_s],
            )
        self._raise_for(_s(status), _s(value), sid)

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
        with self.guard():
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


def connect_redis(settings: GatewaySettings) -> Any:
    """A redis-py asyncio client (or cluster client). Connects on first use, not here.

    Short timeouts and a small retry budget: when Redis is down a request answers 503 within
    about a second instead of hanging; when it comes back the pool reconnects by itself.
    """
    retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)
    common: dict[str, Any] = {
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": min(1.0, settings.redis_timeout_s),
        "retry": retry,
        "decode_responses": False,
    }
    if settings.redis_cluster:
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(
            settings.redis_url, max_connections=settings.redis_max_connections, **common
        )
    # A blocking pool: redis-py's default pool fails at once ("Too many connections") past its
    # size, which a burst of requests turned into 503s although Redis was healthy. Waiting for
    # a free connection (bounded by the command timeout) is what a burst needs.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s,
        health_check_interval=30,
        **common,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns (and closes) its pool
