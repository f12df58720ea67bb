"""What every workflow shares: the head image, a stored mask, and committing a version.

A workflow is an async generator: it validates what it can *before* its first event, so a
streaming client still gets a plain 4xx, then yields :class:`ProgressEvent` while it calls
the workers, and finally yields its result (a committed :class:`Version`, a mask, a reply).
The commit is one Lua script that only succeeds if the head is still the one the edit started
from, so two concurrent edits of one head give one version and one 409, and a failed or
cancelled workflow leaves the session exactly as it was.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from lvi.contracts.gateway import ChatDelta, ChatReply, ProgressEvent, Version
from lvi.errors import Conflict, Unprocessable
from lvi.images import EncodedImage, EncodedMask, ImageLimits

from ..idempotency import EditContext
from ..metrics import GatewayMetrics
from ..presenters import present_version
from ..sessions import MaskRecord, SessionStore, VersionRecord
from ..sessions.index import SessionIndex
from ..settings import GatewaySettings

#: What a workflow yields (masks workflows yield ``MaskInfo`` as their result).
Event = ProgressEvent | Version | ChatDelta | ChatReply


def new_mask_id() -> str:
    return "m_" + secrets.token_hex(8)


class Editor:
    """Reads the head image and masks of an edit, and commits its result as a new version."""

    def __init__(
        self,
        store: SessionStore,
        settings: GatewaySettings,
        metrics: GatewayMetrics,
        index: SessionIndex | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.index = index
        self.limits = ImageLimits(settings.max_image_bytes, settings.max_image_pixels)

    async def head_image(self, ctx: EditContext) -> EncodedImage:
        """The image the edit started from (read from Redis once per context)."""
        if ctx.base is None:
            raise Conflict(
                "The session has no image yet: upload or generate one first.", code="no_image"
            )
        if ctx._image is None:
            ctx._image = ctx.base.encoded(await self.store.image(ctx.sid, ctx.base))
        return ctx._image

    async def mask(
        self, ctx: EditContext, mask_id: str, image: EncodedImage
    ) -> tuple[MaskRecord, EncodedMask]:
        """A stored mask, which must have the size of ``image`` (422 otherwise)."""
        rec, data = await self.store.mask(ctx.sid, mask_id)
        if (rec.width, rec.height) != (image.width, image.height):
            raise Unprocessable(
                f"Mask {mask_id} is {rec.width}x{rec.height} but the head image is "
                f"{image.width}x{image.height}; segment the head image again.",
                code="mask_size_mismatch",
                param="mask_id",
            )
        return rec, rec.encoded(data)

    async def masks(
        self, ctx: EditContext, mask_ids: list[str], image: EncodedImage, *, allow_stale: bool
    ) -> tuple[MaskRecord, EncodedMask]:
        """The stored masks an edit names, combined into one (their union) when several.

        Each must have been made on the head version (409 ``mask_version_mismatch`` unless
        ``allow_stale``), have ``image``'s size (422) and hold pixels (422 ``empty_mask``).
        """
        found = [await self.mask(ctx, mid, image) for mid in mask_ids]
        head = ctx.base.id if ctx.base else None
        for rec, _ in found:
            if not allow_stale and rec.version is not None and rec.version != head:
                raise Conflict(
                    f"Mask {rec.mask_id} was made on version {rec.version}, but the head is "
                    f"version {head}: segment the head again, or send allow_stale_mask=true.",
                    code="mask_version_mismatch",
                    param="mask_ids" if len(mask_ids) > 1 else "mask_id",
                )
            if rec.area == 0:
                raise Unprocessable(
                    f"Mask {rec.mask_id} has no pixels.", code="empty_mask", param="mask_id"
                )
        if len(found) == 1:
            return found[0]
        return await asyncio.to_thread(union_masks, found)

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
        """Store ``image`` as a new version on the context's head (409 if the head moved),
        with the Idempotency-Key's result in the same script."""
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
        if self.index is not None:  # the session moves to the top of the caller's list
            await self.index.touch(ctx.principal, ctx.sid, saved.created_at)
        return present_version(ctx.sid, saved)


def union_masks(found: list[tuple[MaskRecord, EncodedMask]]) -> tuple[MaskRecord, EncodedMask]:
    """One mask of several (decodes them: run it in a thread); its record describes the union
    and keeps the first mask's id and version."""
    import numpy as np

    from lvi.images import encode_mask
    from lvi.masks import mask_stats

    union = np.logical_or.reduce([m.to_bool() for _, m in found])
    bbox, area = mask_stats(union)
    mask = encode_mask(union)
    labels = [r.label for r, _ in found if r.label]
    first = found[0][0]
    rec = first.model_copy(
        update={
            "bbox": bbox,
            "area": area,
            "score": None,
            "label": ", ".join(dict.fromkeys(labels)) or None,
            "format": mask.image.format,
            "mode": mask.image.mode,
            "nbytes": len(mask.image.data),
        }
    )
    return rec, mask
