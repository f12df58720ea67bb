"""Idempotency-Key claims and replays, and If-Match, for every route that changes a session.

:meth:`Idempotency.begin` is how every edit starts: the session must belong to the caller
(404 otherwise), the ``If-Match`` head must be the current head (409), and an
``Idempotency-Key`` either replays the first result or is claimed for this request. It
returns the :class:`EditContext` the workflow runs against (or a :class:`Replay`), and
:meth:`Idempotency.run` wraps the workflow so that a claim it did not use is given back.

A claim outlives the worker call its route waits on (see :func:`idem_lease_s`), so a retry
during the first request waits (409) instead of starting a second edit.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from pydantic import BaseModel

from lvi.errors import BadRequest, Conflict, LviError
from lvi.images import EncodedImage

from .metrics import GatewayMetrics
from .presenters import present_version
from .sessions import IdemClaim, IdemReplay, SessionMeta, SessionStore, VersionRecord
from .settings import GatewaySettings

#: The workers each route waits on (a route not named here does Redis work only).
ROUTE_WORKERS: dict[str, tuple[str, ...]] = {
    "segment": ("seem",),
    "chat": ("llava",),
    "remove": ("inpaint",),
    "move": ("inpaint", "gligen"),
    "replace": ("gligen",),
    "inpaint": ("gligen",),
    "generate": ("gligen",),
    # chat with act: any of them, one step at a time (a lease per slowest call, not per plan)
    "act": ("llava", "seem", "inpaint", "gligen"),
}
IDEM_MARGIN_S = 30.0


def idem_lease_s(route: str, settings: GatewaySettings) -> float:
    """How long an idempotency claim for ``route`` may stay pending.

    As long as the slowest worker the route calls (plus a margin), and no longer: a claim
    left behind by a crash (or a release lost while Redis was down) then blocks retries of a
    cheap route for seconds, not for the slowest worker's timeout.
    """
    workers = ROUTE_WORKERS.get(route.split("?")[0])
    if workers is None:  # upload, masks, undo/redo/checkout: Redis work only
        return settings.redis_timeout_s * 2 + IDEM_MARGIN_S
    return max(settings.worker_timeout(w) for w in workers) + IDEM_MARGIN_S


def parse_if_match(value: str | None) -> int | str | None:
    """``If-Match`` -> a version number, ``None`` for an empty session (``0``), or ``"*"``
    when absent or ``*``. Quotes and a weak prefix are accepted (``W/"3"``)."""
    if value is None or value.strip() in ("", "*"):
        return "*"
    raw = value.strip().removeprefix("W/").strip('"')
    try:
        n = int(raw)
    except ValueError:
        raise BadRequest(
            "If-Match must be a version number (the session's head).", param="If-Match"
        ) from None
    return None if n == 0 else n


def fingerprint(route: str, sid: str, body: BaseModel | bytes | None) -> str:
    """What identifies 'the same request' for an Idempotency-Key."""
    h = hashlib.sha256(f"{route}\n{sid}\n".encode())
    if isinstance(body, BaseModel):
        h.update(body.model_dump_json().encode())
    elif body:
        h.update(body)
    return h.hexdigest()


@dataclass
class EditContext:
    """What a workflow runs against: the caller, the session, the head it started from (the
    one If-Match named), and the Idempotency-Key claim its result is stored under (``None``
    once a result was stored with it)."""

    principal: str
    meta: SessionMeta
    base: VersionRecord | None
    claim: IdemClaim | None
    stream: bool = False
    _image: EncodedImage | None = field(default=None, repr=False)

    @property
    def sid(self) -> str:
        return self.meta.id


@dataclass(frozen=True)
class Replay:
    """The stored result of an earlier request with the same Idempotency-Key."""

    status: int
    body: Any
    event: str  # the SSE event name for a streaming replay ("result" or "done")


class Idempotency:
    """Claims, replays and releases Idempotency-Keys; checks If-Match; runs workflows so that
    an unused claim is given back. Dependencies are injected."""

    def __init__(
        self, store: SessionStore, settings: GatewaySettings, metrics: GatewayMetrics
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics

    async def claim(
        self, sid: str, principal: str, key: str, route: str, fp: str
    ) -> IdemClaim | IdemReplay:
        """Claim ``key`` for ``route`` (its lease follows the route's workers), or get the
        first request's result. Counts replays."""
        got = await self.store.idem_begin(
            sid, principal, key, fp, idem_lease_s(route, self.settings)
        )
        if isinstance(got, IdemReplay):
            self.metrics.idempotent_replays.inc()
        return got

    async def begin(
        self,
        principal: str,
        sid: str,
        *,
        route: str,
        body: BaseModel | bytes | None,
        if_match: str | None,
        idempotency_key: str | None,
        stream: bool = False,
    ) -> EditContext | Replay:
        """Ownership, Idempotency-Key, If-Match: the context to run the workflow in, or the
        first result of this request to replay."""
        meta = await self.store.meta(sid, principal)
        claim: IdemClaim | None = None
        if idempotency_key:
            if len(idempotency_key) > 255:
                raise BadRequest("Idempotency-Key is too long.", param="Idempotency-Key")
            got = await self.claim(
                sid, principal, idempotency_key, route, fingerprint(route, sid, body)
            )
            if isinstance(got, IdemReplay):
                return await self.replay(sid, got)
            claim = got
        try:
            expected = parse_if_match(if_match)
            if expected != "*" and expected != meta.head:
                raise Conflict(
                    f"If-Match is {expected or 0} but the session's head is {meta.head or 0}; "
                    "reload and retry.",
                    code="head_moved",
                    param="If-Match",
                )
            base = await self.store.version(sid, meta.head) if meta.head else None
        except BaseException:
            await self.release(claim)
            raise
        return EditContext(principal, meta, base, claim, stream)

    async def replay(self, sid: str, got: IdemReplay) -> Replay:
        """What to answer for a finished request: its version, or its stored body."""
        if got.kind == "version" and got.version is not None:
            rec = await self.store.version(sid, got.version)
            return Replay(201, present_version(sid, rec).model_dump(), "result")
        return Replay(got.status, got.body, "done")

    async def release(self, claim: IdemClaim | None) -> None:
        """Give a claim back (after a failure), so that a retry runs the request again."""
        if claim:
            await self.store.idem_release(claim)

    async def run(
        self, workflow: str, ctx: EditContext, steps: AsyncIterator[Any]
    ) -> AsyncGenerator[Any, None]:
        """Wrap a workflow: metrics, the principal's long-job quota, and give the
        Idempotency-Key back if it did not finish (also when the client went away)."""
        t0 = time.perf_counter()
        outcome = "error"
        quotas = getattr(self.store, "quotas", None)
        try:
            if quotas is None:
                async for ev in steps:
                    yield ev
            else:
                lease = idem_lease_s(workflow, self.settings)
                async with quotas.job(ctx.principal, workflow, lease):
                    async for ev in steps:
                        yield ev
            outcome = "ok"
        except LviError as e:
            outcome = str(e.status)
            raise
        finally:
            # One shielded scope for all the cleanup: on a client disconnect sse-starlette
            # cancels this generator through an anyio cancel scope, which cancels every await
            # again; with one asyncio.shield per step the first step finished but the
            # cancellation came back at once and the claim was never given back (its key
            # answered 409 idempotency_in_progress until the lease ran out).
            with anyio.CancelScope(shield=True):
                self.metrics.workflow_seconds.labels(workflow, outcome).observe(
                    time.perf_counter() - t0
                )
                # Close the workflow now (not at garbage collection), so that a worker stream
                # it holds is closed and the worker stops.
                aclose = getattr(steps, "aclose", None)
                if aclose is not None:
                    with contextlib.suppress(Exception):
                        await aclose()
                if ctx.claim is not None:
                    await self.release(ctx.claim)
