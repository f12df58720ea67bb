"""The workflows: what each public route does with the session store and the workers.

Every edit follows one shape:

1. :meth:`Orchestrator.begin` -- the session must belong to the caller (404 otherwise), the
   ``If-Match`` head must be the current head (409), and an ``Idempotency-Key`` either
   replays the first result or is claimed for this request;
2. the workflow (an async generator): it validates what it can *before* its first event,
   so a streaming client still gets a plain 4xx, then yields :class:`ProgressEvent` while it
   calls the workers, and finally yields the committed :class:`Version`;
3. the commit is one Lua script that only succeeds if the head is still the one the edit
   started from, so two concurrent edits of one head give one version and one 409, and a
   failed or cancelled workflow leaves the session exactly as it was.

Images are moved as bytes: the gateway reads sizes from headers and never decodes pixels.
The one exception is a mask the user uploads: it is a single-channel PNG, decoded once in a
thread to record its bounding box and area (which ``replace`` and ``move`` need).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from lvi.contracts import gligen, llava, seem
from lvi.contracts import inpaint as inpaint_api
from lvi.contracts.gateway import (
    ChatDelta,
    ChatReply,
    ChatRequest,
    ChatUsage,
    GenerateRequest,
    InpaintRequest,
    MaskInfo,
    Message,
    MoveRequest,
    ProgressEvent,
    RemoveRequest,
    ReplaceRequest,
    SegmentRequest,
    Session,
    Version,
)
from lvi.errors import BadRequest, Conflict, LviError, NotFound, Unprocessable
from lvi.images import EncodedImage, EncodedMask, ImageLimits, b64decode_payload

from .clients import WorkerClients
from .metrics import GatewayMetrics
from .sessions import (
    IdemClaim,
    IdemReplay,
    MaskRecord,
    MessageRecord,
    SessionMeta,
    SessionStore,
    VersionRecord,
)
from .settings import GatewaySettings

log = logging.getLogger("lvi.gateway.orchestrator")

Event = ProgressEvent | Version | ChatDelta | ChatReply


@dataclass
class EditContext:
    """What a workflow runs against: the caller, the session, the head it started from."""

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


def normalise_box(
    box: Sequence[float], width: int, height: int, *, param: str
) -> tuple[list[float], list[int]]:
    """A pixel box -> (the 0..1 box GLIGEN wants, the clipped pixel box). Corners may come in
    any order; a box with no area inside the image is a 422."""
    x0, x1 = sorted((box[0], box[2]))
    y0, y1 = sorted((box[1], box[3]))
    x0, x1 = max(0.0, x0), min(float(width), x1)
    y0, y1 = max(0.0, y0), min(float(height), y1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise Unprocessable(
            f"Box {box} has no area inside the {width}x{height} image.", param=param
        )
    norm = [
        round(x0 / width, 6),
        round(y0 / height, 6),
        round(x1 / width, 6),
        round(y1 / height, 6),
    ]
    return norm, [int(x0), int(y0), round(x1), round(y1)]


def _mask_stats(mask: EncodedMask) -> tuple[list[int] | None, int]:
    """Bounding box and area of a mask (runs in a thread)."""
    import numpy as np

    m = mask.to_bool()
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return None, 0
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1], len(xs)


class Orchestrator:
    """Runs every workflow. Dependencies are injected; nothing global."""

    def __init__(
        self,
        store: SessionStore,
        clients: WorkerClients,
        settings: GatewaySettings,
        metrics: GatewayMetrics,
    ) -> None:
        self.store = store
        self.clients = clients
        self.settings = settings
        self.metrics = metrics
        self.limits = ImageLimits(settings.max_image_bytes, settings.max_image_pixels)

    # An idempotency claim outlives the worker call its route waits on, so a retry during the
    # first request waits (409) instead of starting a second edit; and no longer, so a claim
    # left behind by a crash (or a release lost while Redis was down) blocks retries of a
    # cheap route for seconds, not for the slowest worker's timeout.
    _ROUTE_WORKERS: ClassVar[dict[str, tuple[str, ...]]] = {
        "segment": ("seem",),
        "chat": ("llava",),
        "remove": ("inpaint",),
        "move": ("inpaint", "gligen"),
        "replace": ("gligen",),
        "inpaint": ("gligen",),
        "generate": ("gligen",),
    }
    _IDEM_MARGIN_S = 30.0

    def idem_lease_s(self, route: str) -> float:
        """How long an idempotency claim for ``route`` may stay pending."""
        workers = self._ROUTE_WORKERS.get(route.split("?")[0])
        if workers is None:  # upload, masks, undo/redo/checkout: Redis work only
            return self.settings.redis_timeout_s * 2 + self._IDEM_MARGIN_S
        return max(self.settings.worker_timeout(w) for w in workers) + self._IDEM_MARGIN_S

    # -- rendering --------------------------------------------------------------------------
    @staticmethod
    def render_version(sid: str, rec: VersionRecord) -> Version:
        return Version(
            id=rec.id,
            parent=rec.parent,
            operation=rec.operation,
            params=rec.params,
            seed=rec.seed,
            image_hash=rec.image_hash,
            content_type=rec.content_type,
            bytes=rec.nbytes,
            width=rec.width,
            height=rec.height,
            created_at=rec.created_at,
            image_url=f"/v1/sessions/{sid}/images/{rec.id}",
            mask_id=rec.mask_id,
        )

    @staticmethod
    def render_mask(sid: str, rec: MaskRecord) -> MaskInfo:
        return MaskInfo(
            mask_id=rec.mask_id,
            version=rec.version,
            source=rec.source,  # type: ignore[arg-type]
            width=rec.width,
            height=rec.height,
            bbox=rec.bbox,
            area=rec.area,
            score=rec.score,
            label=rec.label,
            created_at=rec.created_at,
            url=f"/v1/sessions/{sid}/masks/{rec.mask_id}",
        )

    @staticmethod
    def render_message(rec: MessageRecord) -> Message:
        return Message(
            role=rec.role,  # type: ignore[arg-type]
            content=rec.content,
            version=rec.version,
            note=rec.note,
            created_at=rec.created_at,
        )

    # -- sessions ---------------------------------------------------------------------------
    async def create_session(
        self, principal: str, title: str | None, idempotency_key: str | None
    ) -> Session:
        """A new session. With an Idempotency-Key the id is derived from it, so a retried
        create returns the same session instead of a second one."""
        if idempotency_key:
            sid = hashlib.sha256(f"{principal}\0{idempotency_key}".encode()).hexdigest()[:24]
        else:
            sid = self.store.new_id()
        await self.store.create(principal, sid, title)
        return await self.session(principal, sid)

    async def session(self, principal: str, sid: str) -> Session:
        meta = await self.store.meta(sid, principal)
        versions, masks, messages, redo, ttl = await self.store.snapshot(sid)
        by_id = {v.id: v for v in versions}
        head = by_id.get(meta.head) if meta.head else None
        return Session(
            id=sid,
            title=meta.title,
            created_at=meta.created_at,
            updated_at=meta.updated_at,
            expires_in=ttl if ttl >= 0 else None,
            head=meta.head,
            can_undo=head is not None and head.parent is not None,
            can_redo=redo > 0,
            bytes=meta.bytes,
            versions=[self.render_version(sid, v) for v in versions],
            masks=[self.render_mask(sid, m) for m in masks],
            messages=[self.render_message(m) for m in messages],
        )

    async def delete_session(self, principal: str, sid: str) -> None:
        await self.store.delete(sid, principal)

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
            got = await self.store.idem_begin(
                sid,
                principal,
                idempotency_key,
                fingerprint(action, sid, str(target).encode()),
                self.idem_lease_s(action),
            )
            if isinstance(got, IdemReplay):
                self.metrics.idempotent_replays.inc()
                return self.render_version(sid, await self.store.version(sid, got.version or 0))
            claim = got
        try:
            head = await self.store.move_head(
                sid, principal, action, expected_head=expected, target=target, idem=claim
            )
        except BaseException:
            if claim:
                await self.store.idem_release(claim)
            raise
        return self.render_version(sid, await self.store.version(sid, head))

    # -- begin: ownership, If-Match, idempotency -------------------------------------------
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
        meta = await self.store.meta(sid, principal)
        claim: IdemClaim | None = None
        if idempotency_key:
            if len(idempotency_key) > 255:
                raise BadRequest("Idempotency-Key is too long.", param="Idempotency-Key")
            got = await self.store.idem_begin(
                sid,
                principal,
                idempotency_key,
                fingerprint(route, sid, body),
                self.idem_lease_s(route),
            )
            if isinstance(got, IdemReplay):
                self.metrics.idempotent_replays.inc()
                return await self._replay(sid, got)
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
            if claim:
                await self.store.idem_release(claim)
            raise
        return EditContext(principal, meta, base, claim, stream)

    async def _replay(self, sid: str, got: IdemReplay) -> Replay:
        if got.kind == "version" and got.version is not None:
            rec = await self.store.version(sid, got.version)
            return Replay(201, self.render_version(sid, rec).model_dump(), "result")
        return Replay(got.status, got.body, "done")

    async def abort(self, ctx: EditContext) -> None:
        if ctx.claim:
            await self.store.idem_release(ctx.claim)

    async def head_image(self, ctx: EditContext) -> EncodedImage:
        if ctx.base is None:
            raise Conflict(
                "The session has no image yet: upload or generate one first.", code="no_image"
            )
        if ctx._image is None:
            ctx._image = ctx.base.encoded(await self.store.image(ctx.sid, ctx.base))
        return ctx._image

    async def commit(
        self,
        ctx: EditContext,
        image: EncodedImage,
        operation: str,
        params: dict[str, Any],
        *,
        seed: int | None = None,
        mask: tuple[MaskRecord, bytes] | None = None,
    ) -> Version:
        rec = VersionRecord(
            parent=ctx.base.id if ctx.base else None,
            operation=operation,
            params=params,
            seed=seed,
            image_hash=image.sha256,
            format=image.format,
            mode=image.mode,
            orientation=image.orientation,
            width=image.width,
            height=image.height,
            nbytes=len(image.data),
            created_at=time.time(),
            mask_id=mask[0].mask_id if mask else None,
        )
        saved = await self.store.commit_version(
            ctx.sid,
            ctx.principal,
            expected_head=ctx.meta.head,
            record=rec,
            image=image.data,
            idem=ctx.claim,
            mask=mask,
        )
        ctx.claim = None  # stored with the commit
        self.metrics.versions_created.labels(operation).inc()
        return self.render_version(ctx.sid, saved)

    async def run(
        self, workflow: str, ctx: EditContext, steps: AsyncIterator[Any]
    ) -> AsyncGenerator[Any, None]:
        """Wrap a workflow: metrics, and give the Idempotency-Key back if it did not finish."""
        t0 = time.perf_counter()
        outcome = "error"
        try:
            async for ev in steps:
                yield ev
            outcome = "ok"
        except LviError as e:
            outcome = str(e.status)
            raise
        finally:
            self.metrics.workflow_seconds.labels(workflow, outcome).observe(
                time.perf_counter() - t0
            )
            # Close the workflow now (not at garbage collection), so that a worker stream it
            # holds is closed and the worker stops.
            aclose = getattr(steps, "aclose", None)
            if aclose is not None:
                await asyncio.shield(aclose())
            if ctx.claim is not None:
                await asyncio.shield(self.abort(ctx))

    # -- upload -----------------------------------------------------------------------------
    async def upload(
        self, ctx: EditContext, data: bytes, filename: str | None
    ) -> AsyncIterator[Event]:
        image = EncodedImage.from_bytes(data, self.limits, param="file")
        params: dict[str, Any] = {"format": image.format}
        if filename:
            params["filename"] = filename[:200]
        yield await self.commit(ctx, image, "upload", params)

    # -- masks ------------------------------------------------------------------------------
    async def _mask(
        self, ctx: EditContext, mask_id: str, image: EncodedImage
    ) -> tuple[MaskRecord, EncodedMask]:
        rec, data = await self.store.mask(ctx.sid, mask_id)
        if (rec.width, rec.height) != (image.width, image.height):
            raise Unprocessable(
                f"Mask {mask_id} is {rec.width}x{rec.height} but the head image is "
                f"{image.width}x{image.height}; segment the head image again.",
                code="mask_size_mismatch",
                param="mask_id",
            )
        return rec, rec.encoded(data)

    async def segment(
        self, ctx: EditContext, req: SegmentRequest
    ) -> AsyncIterator[Event | MaskInfo]:
        image = await self.head_image(ctx)
        stroke: EncodedMask | None = None
        if req.stroke:
            stroke = EncodedMask.from_bytes(b64decode_payload(req.stroke, self.limits), self.limits)
            if stroke.size != image.size:
                raise Unprocessable(
                    f"stroke is {stroke.size[0]}x{stroke.size[1]} but the image is "
                    f"{image.width}x{image.height}.",
                    code="mask_size_mismatch",
                    param="stroke",
                )
        seem_req = seem.SegmentRequest(
            image=image,
            points=req.points,
            labels=req.labels,
            boxes=req.boxes,
            stroke=stroke,
            text=req.text,
            dilate=req.dilate,
            merge=req.merge,
        )
        yield ProgressEvent(stage="segment")
        res = await self.clients.segment(seem_req)
        if not res.masks:
            raise Unprocessable(
                "Nothing was found for these prompts.", code="nothing_found", param="text"
            )
        best = res.masks[0]
        if best.mask.size != image.size:
            raise Unprocessable("The segmentation mask does not match the image size.")
        rec = MaskRecord(
            mask_id=self._mask_id(),
            version=ctx.base.id if ctx.base else None,
            source="segment",
            width=image.width,
            height=image.height,
            bbox=best.bbox,
            area=best.area,
            score=best.score,
            label=best.label,
            created_at=time.time(),
            format=best.mask.image.format,
            mode=best.mask.image.mode,
            nbytes=len(best.mask.image.data),
        )
        info = self.render_mask(ctx.sid, rec)
        await self.store.add_mask(
            ctx.sid,
            ctx.principal,
            rec,
            best.mask.image.data,
            idem=ctx.claim,
            idem_body=info.model_dump(),
        )
        ctx.claim = None
        yield info

    async def upload_mask(
        self, ctx: EditContext, data: bytes, version: int | None
    ) -> AsyncIterator[Event | MaskInfo]:
        """A mask the user painted (single-channel PNG) on ``version`` (default: the head)."""
        if version is not None and (ctx.base is None or version != ctx.base.id):
            target = await self.store.version(ctx.sid, version)
        elif ctx.base is not None:
            target = ctx.base
        else:
            raise Conflict("The session has no image yet.", code="no_image")
        try:
            mask = EncodedMask.from_bytes(data, self.limits)
        except BadRequest as e:
            raise BadRequest(e.message, code=e.code, param="file") from None
        if mask.size != (target.width, target.height):
            raise Unprocessable(
                f"The mask is {mask.size[0]}x{mask.size[1]} but version {target.id} is "
                f"{target.width}x{target.height}.",
                code="mask_size_mismatch",
                param="file",
            )
        bbox, area = await asyncio.to_thread(_mask_stats, mask)
        if area == 0:
            raise Unprocessable("The mask is empty (no pixel >= 128).", code="empty_mask")
        rec = MaskRecord(
            mask_id=self._mask_id(),
            version=target.id,
            source="upload",
            width=target.width,
            height=target.height,
            bbox=bbox,
            area=area,
            created_at=time.time(),
            format=mask.image.format,
            mode=mask.image.mode,
            nbytes=len(data),
        )
        info = self.render_mask(ctx.sid, rec)
        await self.store.add_mask(
            ctx.sid, ctx.principal, rec, data, idem=ctx.claim, idem_body=info.model_dump()
        )
        ctx.claim = None
        yield info

    @staticmethod
    def _mask_id() -> str:
        return "m_" + secrets.token_hex(8)

    # -- edits ------------------------------------------------------------------------------
    async def remove(self, ctx: EditContext, req: RemoveRequest) -> AsyncIterator[Event]:
        image = await self.head_image(ctx)
        _, mask = await self._mask(ctx, req.mask_id, image)
        yield ProgressEvent(stage="inpaint")
        res = await self.clients.inpaint(
            inpaint_api.InpaintRequest(image=image, mask=mask, dilate=req.dilate)
        )
        yield await self.commit(ctx, res.image, "remove", req.model_dump(exclude_none=True))

    async def move(self, ctx: EditContext, req: MoveRequest) -> AsyncIterator[Event]:
        image = await self.head_image(ctx)
        mrec, mask = await self._mask(ctx, req.mask_id, image)
        norm: list[float] | None = None
        if req.phrase:
            if mrec.bbox is None:
                raise Unprocessable("The mask has no pixels.", code="empty_mask", param="mask_id")
            x0, y0, x1, y1 = mrec.bbox
            moved = [x0 + req.dx, y0 + req.dy, x1 + req.dx, y1 + req.dy]
            norm, _ = normalise_box(moved, image.width, image.height, param="dx")
        params = req.model_dump(exclude_none=True)
        yield ProgressEvent(stage="inpaint")
        bg = await self.clients.inpaint(
            inpaint_api.InpaintRequest(image=image, mask=mask, dilate=req.dilate)
        )
        if req.phrase and norm is not None:
            gen_req = self._gligen(req, req.prompt or req.phrase, [req.phrase], [norm], bg.image)
            result: gligen.GenerateResponse | None = None
            async for ev in self._generate(ctx, gen_req):
                if isinstance(ev, gligen.GenerateResponse):
                    result = ev
                else:
                    yield ev
            assert result is not None
            yield await self.commit(ctx, result.image, "move", params, seed=result.seed)
            return
        yield ProgressEvent(stage="composite")
        comp = await self.clients.composite(
            inpaint_api.CompositeRequest(
                image=bg.image, source=image, mask=mask, dx=req.dx, dy=req.dy, feather=req.feather
            )
        )
        new_mask: tuple[MaskRecord, bytes] | None = None
        if comp.mask is not None and comp.bbox is not None:
            same_size = mrec.bbox is not None and (
                comp.bbox[2] - comp.bbox[0] == mrec.bbox[2] - mrec.bbox[0]
                and comp.bbox[3] - comp.bbox[1] == mrec.bbox[3] - mrec.bbox[1]
            )
            new_mask = (
                MaskRecord(
                    mask_id=self._mask_id(),
                    version=None,
                    source="move",
                    width=image.width,
                    height=image.height,
                    bbox=comp.bbox,
                    area=mrec.area if same_size else None,
                    label=mrec.label,
                    created_at=time.time(),
                    format=comp.mask.image.format,
                    mode=comp.mask.image.mode,
                    nbytes=len(comp.mask.image.data),
                ),
                comp.mask.image.data,
            )
        yield await self.commit(ctx, comp.image, "move", params, mask=new_mask)

    async def replace(self, ctx: EditContext, req: ReplaceRequest) -> AsyncIterator[Event]:
        image = await self.head_image(ctx)
        mrec, mask = await self._mask(ctx, req.mask_id, image)
        if mrec.bbox is None:
            raise Unprocessable("The mask has no pixels.", code="empty_mask", param="mask_id")
        norm, _ = normalise_box(mrec.bbox, image.width, image.height, param="mask_id")
        gen_req = self._gligen(
            req,
            req.prompt or req.phrase,
            [req.phrase],
            [norm],
            image,
            mask if req.use_mask else None,
        )
        async for ev in self._edit_with_gligen(ctx, gen_req, "replace", req):
            yield ev

    async def inpaint(self, ctx: EditContext, req: InpaintRequest) -> AsyncIterator[Event]:
        image = await self.head_image(ctx)
        boxes = [
            normalise_box(b, image.width, image.height, param=f"boxes.{i}")[0]
            for i, b in enumerate(req.boxes)
        ]
        prompt = req.prompt or "; ".join(req.phrases)
        gen_req = self._gligen(req, prompt, req.phrases, boxes, image)
        async for ev in self._edit_with_gligen(ctx, gen_req, "inpaint", req):
            yield ev

    async def generate(self, ctx: EditContext, req: GenerateRequest) -> AsyncIterator[Event]:
        boxes = [
            normalise_box(b, req.width, req.height, param=f"boxes.{i}")[0]
            for i, b in enumerate(req.boxes)
        ]
        gen_req = self._gligen(req, req.prompt, req.phrases, boxes, None)
        async for ev in self._edit_with_gligen(ctx, gen_req, "generate", req):
            yield ev

    def _gligen(
        self,
        req: Any,
        prompt: str,
        phrases: list[str],
        boxes: list[list[float]],
        image: EncodedImage | None,
        mask: EncodedMask | None = None,
    ) -> gligen.GenerateRequest:
        # Unset beta: the worker's default (1.0 for inpainting, grounding on every step, as
        # the original demo forced).
        try:
            return gligen.GenerateRequest(
                prompt=prompt,
                phrases=phrases,
                boxes=boxes,
                image=image,
                mask=mask,
                steps=req.steps,
                guidance_scale=req.guidance_scale,
                negative_prompt=req.negative_prompt,
                seed=req.seed,
                width=getattr(req, "width", None) if image is None else None,
                height=getattr(req, "height", None) if image is None else None,
                scheduled_sampling_beta=getattr(req, "scheduled_sampling_beta", None),
            )
        except ValidationError as e:
            first = e.errors()[0]
            raise Unprocessable(f"Invalid generation request: {first['msg']}") from None

    async def _generate(
        self, ctx: EditContext, req: gligen.GenerateRequest
    ) -> AsyncIterator[ProgressEvent | gligen.GenerateResponse]:
        """GLIGEN, streamed (progress events) when the client streams, else one call."""
        if not ctx.stream:
            yield ProgressEvent(stage="generate")
            yield await self.clients.generate(req)
            return
        yield ProgressEvent(stage="generate", step=0, total=req.steps)
        async for ev in self.clients.generate_stream(req):
            if isinstance(ev, gligen.Started):
                yield ProgressEvent(stage="generate", step=0, total=ev.total)
            elif isinstance(ev, gligen.Progress):
                yield ProgressEvent(stage="generate", step=ev.step, total=ev.total)
            else:
                yield ev

    async def _edit_with_gligen(
        self, ctx: EditContext, gen_req: gligen.GenerateRequest, operation: str, req: BaseModel
    ) -> AsyncIterator[Event]:
        result: gligen.GenerateResponse | None = None
        async for ev in self._generate(ctx, gen_req):
            if isinstance(ev, gligen.GenerateResponse):
                result = ev
            else:
                yield ev
        assert result is not None
        yield await self.commit(
            ctx, result.image, operation, req.model_dump(exclude_none=True), seed=result.seed
        )

    # -- chat -------------------------------------------------------------------------------
    async def chat(self, ctx: EditContext, req: ChatRequest) -> AsyncIterator[Event]:
        """One turn about the head image, with the session's history.

        Unlike the original demo, the conversation survives an image change: the turn after
        a change starts with a note telling the model which version it now sees.
        """
        head = ctx.base
        history = await self.store.messages(ctx.sid, self.settings.chat_history_messages)
        note: str | None = None
        if head is not None and history and history[-1].version != head.id:
            note = f"(The image has changed: it is now version {head.id} after {head.operation}.)"
        messages: list[dict[str, Any]] = []
        for m in history:
            text = f"{m.note}\n{m.content}" if m.note else m.content
            messages.append({"role": m.role, "content": text})
        text = f"{note}\n{req.message}" if note else req.message
        if head is not None:
            image = await self.head_image(ctx)
            content: Any = [
                {"type": "image_url", "image_url": {"url": image.to_data_uri()}},
                {"type": "text", "text": text},
            ]
        else:
            content = text
        messages.append({"role": "user", "content": content})
        try:
            llava_req = llava.ChatCompletionRequest.model_validate(
                {
                    "messages": messages,
                    "temperature": req.temperature,
                    "top_p": req.top_p,
                    "max_tokens": req.max_tokens,
                    "seed": req.seed,
                    "stream": req.stream,
                }
            )
        except ValidationError as e:
            raise Unprocessable(f"Chat request is invalid: {e.errors()[0]['msg']}") from None
        now = time.time()
        user = MessageRecord(
            role="user",
            content=req.message,
            version=head.id if head else None,
            note=note,
            created_at=now,
        )
        reply_text = ""
        usage: ChatUsage | None = None
        finish: str | None = None
        if req.stream:
            parts: list[str] = []
            async for chunk in self.clients.chat_stream(llava_req):
                for choice in chunk.choices:
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                        yield ChatDelta(content=choice.delta.content)
                    if choice.finish_reason:
                        finish = choice.finish_reason
                if chunk.usage is not None:
                    usage = ChatUsage(**chunk.usage.model_dump())
            reply_text = "".join(parts)
        else:
            yield ProgressEvent(stage="chat")
            resp = await self.clients.chat(llava_req)
            reply_text = resp.choices[0].message.content if resp.choices else ""
            finish = resp.choices[0].finish_reason if resp.choices else None
            usage = ChatUsage(**resp.usage.model_dump())
        assistant = MessageRecord(
            role="assistant", content=reply_text, version=user.version, created_at=time.time()
        )
        out = ChatReply(
            reply=self.render_message(assistant),
            user=self.render_message(user),
            usage=usage,
            finish_reason=finish,
        )
        await self.store.append_messages(
            ctx.sid,
            ctx.principal,
            [user, assistant],
            idem=ctx.claim,
            idem_body=json.loads(out.model_dump_json()),
        )
        ctx.claim = None
        yield out
