"""Edit workflows on the head image: remove, move, replace, inpaint (each -> a new version).

``remove`` fills the mask (inpaint worker); ``move`` fills the old place, then pastes the
object's own pixels at the new place (inpaint worker's compositing) or, with a phrase,
regenerates it there; ``replace`` and ``inpaint`` are GLIGEN grounded inpainting. No pixel
work happens here: the gateway moves bytes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from lvi.contracts import inpaint as inpaint_api
from lvi.contracts.gateway import (
    InpaintRequest,
    MoveRequest,
    ProgressEvent,
    RemoveRequest,
    ReplaceRequest,
)
from lvi.errors import Unprocessable
from lvi.images import EncodedImage, EncodedMask

from ..clients import WorkerClients
from ..idempotency import EditContext
from ..sessions import MaskRecord
from .base import Editor, Event, new_mask_id
from .generate import GenerateService, gligen_request, normalise_box


class EditService:
    """Edits of an object (by its mask) or of regions (by boxes) of the head image."""

    def __init__(self, clients: WorkerClients, editor: Editor, gligen: GenerateService) -> None:
        self.clients = clients
        self.editor = editor
        self.gligen = gligen

    async def _masks(
        self, ctx: EditContext, req: RemoveRequest | MoveRequest | ReplaceRequest
    ) -> tuple[EncodedImage, MaskRecord, EncodedMask]:
        image = await self.editor.head_image(ctx)
        mrec, mask = await self.editor.masks(
            ctx, req.masks, image, allow_stale=req.allow_stale_mask
        )
        return image, mrec, mask

    async def remove(
        self, ctx: EditContext, req: RemoveRequest
    ) -> AsyncIterator[Event | EncodedImage]:
        """Fill the masks' region -> a new version; with ``preview`` the filled image only
        (nothing is committed, so the UI can re-fill as its dilation slider moves)."""
        image, _, mask = await self._masks(ctx, req)
        yield ProgressEvent(stage="inpaint")
        res = await self.clients.inpaint(
            inpaint_api.InpaintRequest(image=image, mask=mask, dilate=req.dilate)
        )
        if req.preview:
            yield res.image
            return
        params = req.model_dump(exclude_none=True, exclude={"preview"})
        yield await self.editor.commit(ctx, res.image, "remove", params)

    async def move(self, ctx: EditContext, req: MoveRequest) -> AsyncIterator[Event]:
        image, mrec, mask = await self._masks(ctx, req)
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
            gen_req = gligen_request(req, req.prompt or req.phrase, [req.phrase], [norm], bg.image)
            async for ev in self.gligen.run_and_commit(ctx, gen_req, "move", req):
                yield ev
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
                    mask_id=new_mask_id(),
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
        yield await self.editor.commit(ctx, comp.image, "move", params, mask=new_mask)

    async def replace(self, ctx: EditContext, req: ReplaceRequest) -> AsyncIterator[Event]:
        image, mrec, mask = await self._masks(ctx, req)
        if mrec.bbox is None:
            raise Unprocessable("The mask has no pixels.", code="empty_mask", param="mask_id")
        norm, _ = normalise_box(mrec.bbox, image.width, image.height, param="mask_id")
        gen_req = gligen_request(
            req,
            req.prompt or req.phrase,
            [req.phrase],
            [norm],
            image,
            mask if req.use_mask else None,
        )
        async for ev in self.gligen.run_and_commit(ctx, gen_req, "replace", req):
            yield ev

    async def inpaint(self, ctx: EditContext, req: InpaintRequest) -> AsyncIterator[Event]:
        image = await self.editor.head_image(ctx)
        boxes = [
            normalise_box(b, image.width, image.height, param=f"boxes.{i}")[0]
            for i, b in enumerate(req.boxes)
        ]
        prompt = req.prompt or "; ".join(req.phrases)
        gen_req = gligen_request(req, prompt, req.phrases, boxes, image)
        async for ev in self.gligen.run_and_commit(ctx, gen_req, "inpaint", req):
            yield ev
