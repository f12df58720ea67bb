"""What the session store keeps and returns: versions, masks, messages, the session's meta,
and the state of an Idempotency-Key (a claim we hold, or a finished result to replay)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from lvi.images import MIME_TYPES, EncodedImage, EncodedMask

from .keys import VID_PLACEHOLDER


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
    """A stored chat message, with the version of the image it was about."""

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
class IdemClaim:
    """We own an Idempotency-Key until we store a result or release it."""

    key: str
    fingerprint: str
    pending: str

    def done_version(self) -> str:
        """The stored result of a request that created a version (id filled in by Lua)."""
        return (
            '{"state":"done","fp":' + json.dumps(self.fingerprint) + ',"kind":"version",'
            '"version":' + VID_PLACEHOLDER + "}"
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
