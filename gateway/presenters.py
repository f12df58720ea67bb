"""Stored records -> the public API's models (``lvi.contracts.gateway``).

Plain functions: the only place that knows how a record becomes what a client sees (URLs
included), shared by every workflow and by idempotent replays.
"""

from __future__ import annotations

from typing import Any, cast

from lvi.contracts.gateway import MaskInfo, Message, Session, Version

from .sessions import MaskRecord, MessageRecord, SessionMeta, VersionRecord


def present_version(sid: str, rec: VersionRecord) -> Version:
    """A version as the API shows it, with the URL of its image."""
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


def present_mask(sid: str, rec: MaskRecord) -> MaskInfo:
    """A mask as the API shows it, with the URL of its PNG."""
    return MaskInfo(
        mask_id=rec.mask_id,
        version=rec.version,
        # The store only ever records the sources the contract names.
        source=cast(Any, rec.source),
        width=rec.width,
        height=rec.height,
        bbox=rec.bbox,
        area=rec.area,
        score=rec.score,
        label=rec.label,
        created_at=rec.created_at,
        url=f"/v1/sessions/{sid}/masks/{rec.mask_id}",
    )


def present_message(rec: MessageRecord) -> Message:
    """A chat message as the API shows it."""
    return Message(
        role=cast(Any, rec.role),  # "user" | "assistant", as stored by the chat workflow
        content=rec.content,
        version=rec.version,
        note=rec.note,
        created_at=rec.created_at,
    )


def present_session(
    meta: SessionMeta,
    versions: list[VersionRecord],
    masks: list[MaskRecord],
    messages: list[MessageRecord],
    redo: int,
    ttl: int,
) -> Session:
    """A whole session (``SessionStore.snapshot`` plus its meta)."""
    sid = meta.id
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
        versions=[present_version(sid, v) for v in versions],
        masks=[present_mask(sid, m) for m in masks],
        messages=[present_message(m) for m in messages],
    )
