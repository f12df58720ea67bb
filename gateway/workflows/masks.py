"""Mask workflows: segment the head image (seem worker), or store a mask the user painted.

A painted mask is the one image the gateway decodes: a single-channel PNG, decoded once in a
thread to record its bounding box and area (which ``replace`` and ``move`` need).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from lvi.contracts import seem
from lvi.contracts.gateway import MaskInfo, ProgressEvent, SegmentRequest, SegmentResult
from lvi.errors import BadRequest, Conflict, Unprocessable
from lvi.images import EncodedMask, b64decode_payload
from lvi.masks import mask_stats

from ..clients import WorkerClients
from ..idempotency import EditContext
from ..presenters import present_mask
from ..sessions import MaskRecord, SessionStore
from .base import Editor, Event, new_mask_id

#: Chooses one of the seem worker's masks (best first); may raise an ``LviError``.
Pick = Callable[[list[seem.SegmentMask]], seem.SegmentMask]


class MaskService:
    """Makes masks on a session's images; each is stored and answered as ``MaskInfo``."""

    def __init__(self, store: SessionStore, clients: WorkerClients, editor: Editor) -> None:
        self.store = store
        self.clients = clients
        self.editor = editor

    async def segment(
        self, ctx: EditContext, req: SegmentRequest, *, pick: Pick | None = None
    ) -> AsyncIterator[Event | SegmentResult]:
        """The masks the seem worker finds for the prompts on the head image: one (merged)
        or, with ``merge`` false, one per object up to ``max_instances``, each stored.
        ``pick`` keeps one of the worker's masks instead (chat ``act`` picks by position)."""
        limits = self.editor.limits
        image = await self.editor.head_image(ctx)
        stroke: EncodedMask | None = None
        if req.stroke:
            stroke = EncodedMask.from_bytes(b64decode_payload(req.stroke, limits), limits)
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
            max_masks=req.max_instances,
        )
        yield ProgressEvent(stage="segment")
        res = await self.clients.segment(seem_req)
        # A mask without pixels is no answer: nothing is stored, the caller hears why.
        found = [m for m in res.masks if m.area > 0]
        if not found:
            what = "text" if req.text and not (req.points or req.boxes) else None
            raise Unprocessable(
                "Nothing was found for these prompts (the mask would be empty).",
                code="empty_mask",
                param=what,
            )
        if pick is not None:
            found = [pick(found)]
        found = found[: 1 if req.merge else req.max_instances]
        if any(m.mask.size != image.size for m in found):
            raise Unprocessable("The segmentation mask does not match the image size.")
        now = time.time()
        stored: list[tuple[MaskRecord, bytes]] = [
            (
                MaskRecord(
                    mask_id=new_mask_id(),
                    version=ctx.base.id if ctx.base else None,
                    source="segment",
                    width=image.width,
                    height=image.height,
                    bbox=m.bbox,
                    area=m.area,
                    score=m.score,
                    label=m.label,
                    created_at=now,
                    format=m.mask.image.format,
                    mode=m.mask.image.mode,
                    nbytes=len(m.mask.image.data),
                ),
                m.mask.image.data,
            )
            for m in found
        ]
        instances = [present_mask(ctx.sid, rec) for rec, _ in stored]
        result = SegmentResult(**instances[0].model_dump(), instances=instances)
        # The others first; the best one last, with the Idempotency-Key's result, so a retry
        # after a failure part-way stores them again rather than answering half a result.
        for rec, data in stored[1:]:
            await self.store.add_mask(ctx.sid, ctx.principal, rec, data)
        rec, data = stored[0]
        await self.store.add_mask(
            ctx.sid,
            ctx.principal,
            rec,
            data,
            idem=ctx.claim,
            idem_body=result.model_dump(),
        )
        ctx.claim = None
        yield result

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
            mask = EncodedMask.from_bytes(data, self.editor.limits)
        except BadRequest as e:
            raise BadRequest(e.message, code=e.code, param="file") from None
        if mask.size != (target.width, target.height):
            raise Unprocessable(
                f"The mask is {mask.size[0]}x{mask.size[1]} but version {target.id} is "
                f"{target.width}x{target.height}.",
                code="mask_size_mismatch",
                param="file",
            )
        # Decoding the PNG and scanning it are CPU work: off the event loop.
        bbox, area = await asyncio.to_thread(lambda: mask_stats(mask.to_bool()))
        if area == 0:
            raise Unprocessable("The mask is empty (no pixel >= 128).", code="empty_mask")
        rec = MaskRecord(
            mask_id=new_mask_id(),
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
        info = present_mask(ctx.sid, rec)
        await self.store.add_mask(
            ctx.sid, ctx.principal, rec, data, idem=ctx.claim, idem_body=info.model_dump()
        )
        ctx.claim = None
        yield info
