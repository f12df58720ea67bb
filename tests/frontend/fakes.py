"""An in-memory stand-in for the gateway SDK (``AsyncLviClient``'s methods the UI uses).

Used by the fast tests of the handlers and the app wiring; the browser tests run the real
gateway and workers instead.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lvi.contracts.gateway import (
    ChatDelta,
    ChatReply,
    MaskInfo,
    Message,
    ProgressEvent,
    SegmentResult,
    ServiceInfo,
    Session,
    Version,
)
from lvi_client import (
    ConflictError,
    NotFoundError,
    ServiceUnavailableError,
    UnprocessableEntityError,
)
from tests.frontend.fake_library import FakeLibrary


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class _Session:
    id: str
    versions: list[Version] = field(default_factory=list)
    images: dict[int, bytes] = field(default_factory=dict)
    head: int | None = None
    redo: list[int] = field(default_factory=list)
    masks: dict[str, tuple[MaskInfo, bytes]] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    title: str | None = None
    updated: float = field(default_factory=time.time)


class FakeGateway(FakeLibrary):
    """Enough of the gateway for the UI: versions with undo/redo, box/point segmentation,
    remove (fills grey), generate (noise), chat (echo, streamed). ``calls`` logs each call;
    ``down`` names skills that answer 503, like a stopped worker."""

    def __init__(self, random_weights: bool = True) -> None:
        self.sessions: dict[str, _Session] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.down: set[str] = set()
        self.random_weights = random_weights

    def _s(self, sid: str) -> _Session:
        if sid not in self.sessions:
            raise NotFoundError("Session not found.", status=404)
        return self.sessions[sid]

    def _check(self, skill: str) -> None:
        if skill in self.down:
            raise ServiceUnavailableError(f"The {skill} worker is unavailable.", param=skill)

    def _commit(self, s: _Session, data: bytes, op: str, seed: int | None = None) -> Version:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
        vid = len(s.versions) + 1
        v = Version(
            id=vid,
            parent=s.head,
            operation=op,
            seed=seed,
            image_hash=hashlib.sha256(data).hexdigest(),
            content_type="image/png",
            bytes=len(data),
            width=w,
            height=h,
            created_at=time.time(),
            image_url=f"/v1/sessions/{s.id}/images/{vid}",
        )
        s.versions.append(v)
        s.images[vid] = data
        s.head, s.redo, s.updated = vid, [], time.time()
        return v

    def _head_array(self, s: _Session) -> np.ndarray:
        assert s.head is not None
        return np.asarray(Image.open(io.BytesIO(s.images[s.head])).convert("RGB")).copy()

    # API
    def with_api_key(self, api_key: str | None) -> FakeGateway:
        """One fake for every user: the unit tests of the handlers have one user."""
        return self

    async def info(self) -> ServiceInfo:
        return ServiceInfo(
            version="test",
            random_weights=self.random_weights,
            profiles={"llava": "tiny"},
            limits={},
            workers=[],
        )

    async def create_session(self, title: str | None = None, **_: Any) -> Session:
        sid = uuid.uuid4().hex
        self.sessions[sid] = _Session(sid, title=title)
        self.calls.append(("create_session", {}))
        return await self.get_session(sid)

    async def get_session(self, session_id: str) -> Session:
        s = self._s(session_id)
        now = time.time()
        return Session(
            id=s.id,
            title=s.title,
            created_at=now,
            updated_at=now,
            head=s.head,
            can_undo=bool(s.head and s.head > 1 and s.versions[s.head - 1].parent),
            can_redo=bool(s.redo),
            bytes=sum(len(b) for b in s.images.values()),
            versions=list(s.versions),
            masks=[m for m, _ in s.masks.values()],
            messages=list(s.messages),
        )

    async def clear_messages(self, session_id: str) -> None:
        self.calls.append(("clear_messages", {}))
        self._s(session_id).messages.clear()

    async def upload_image(self, session_id: str, image: bytes | str | Path, **_: Any) -> Version:
        data = image if isinstance(image, bytes) else Path(image).read_bytes()
        self.calls.append(("upload_image", {}))
        arr = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        return self._commit(self._s(session_id), png(arr), "upload")

    async def get_image(self, session_id: str, version: int | str = "head") -> bytes:
        s = self._s(session_id)
        vid = s.head if version == "head" else int(version)
        return s.images[vid]  # type: ignore[index]

    async def get_mask(self, session_id: str, mask_id: str) -> bytes:
        return self._s(session_id).masks[mask_id][1]

    async def undo(self, session_id: str, **_: Any) -> Version:
        s = self._s(session_id)
        head = s.versions[s.head - 1] if s.head else None
        if head is None or head.parent is None:
            raise ConflictError("Nothing to undo.", status=409)
        s.redo.append(head.id)
        s.head = head.parent
        return s.versions[s.head - 1]

    async def redo(self, session_id: str, **_: Any) -> Version:
        s = self._s(session_id)
        if not s.redo:
            raise ConflictError("Nothing to redo.", status=409)
        s.head = s.redo.pop()
        return s.versions[s.head - 1]

    async def checkout(self, session_id: str, version: int, **_: Any) -> Version:
        s = self._s(session_id)
        s.head, s.redo = version, []
        return s.versions[version - 1]

    async def segment(self, session_id: str, **kw: Any) -> SegmentResult:
        """One mask for every prompt together; with ``merge=False`` and several boxes, one
        mask per box (the clicks, stroke and text go with the first), like the seem worker."""
        self._check("seem")
        self.calls.append(("segment", kw))
        s = self._s(session_id)
        h, w = self._head_array(s).shape[:2]
        boxes = list(kw.get("boxes") or [])
        groups = [[b] for b in boxes] if len(boxes) > 1 and kw.get("merge") is False else [boxes]
        found = [self._segment_one(s, w, h, groups[0], kw)]
        found += [self._segment_one(s, w, h, g, {}) for g in groups[1:]]
        return SegmentResult(**found[0].model_dump(), instances=found)

    def _segment_one(
        self, s: _Session, w: int, h: int, boxes: list[Any], kw: dict[str, Any]
    ) -> MaskInfo:
        mask = np.zeros((h, w), np.uint8)
        for x0, y0, x1, y1 in boxes:
            mask[int(y0) : int(y1), int(x0) : int(x1)] = 255
        for (x, y), lab in zip(kw.get("points") or [], kw.get("labels") or [], strict=False):
            if lab:
                mask[max(0, int(y) - 20) : int(y) + 20, max(0, int(x) - 20) : int(x) + 20] = 255
        if kw.get("stroke"):
            stroke = np.asarray(Image.open(io.BytesIO(base64.b64decode(kw["stroke"]))))
            mask[stroke > 0] = 255
        if kw.get("text") and not mask.any():
            mask[h // 4 : h // 2, w // 4 : w // 2] = 255
        ys, xs = np.nonzero(mask)
        bbox = (
            [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
            if len(xs)
            else None
        )
        info = MaskInfo(
            mask_id=uuid.uuid4().hex[:12],
            version=s.head,
            source="segment",
            width=w,
            height=h,
            bbox=bbox,
            area=int((mask > 0).sum()),
            score=0.9,
            label=kw.get("text") or None,
            created_at=time.time(),
            url="",
        )
        s.masks[info.mask_id] = (info, png(mask))
        return info

    def _mask(self, s: _Session, mask_id: str | Sequence[str]) -> np.ndarray:
        """One stored mask, or the union of several (what the gateway edits)."""
        ids = [mask_id] if isinstance(mask_id, str) else list(mask_id)
        masks = [np.asarray(Image.open(io.BytesIO(s.masks[i][1]))) > 0 for i in ids]
        return np.logical_or.reduce(masks)

    async def upload_mask(
        self, session_id: str, mask: bytes | str | Path, *, version: int | None = None, **_: Any
    ) -> MaskInfo:
        """A painted mask, checked as the gateway does (the version's size, not empty)."""
        data = mask if isinstance(mask, bytes) else Path(mask).read_bytes()
        self.calls.append(("upload_mask", {"version": version}))
        s = self._s(session_id)
        vid = version or s.head
        assert vid is not None
        with Image.open(io.BytesIO(s.images[vid])) as im:
            w, h = im.size
        arr = np.asarray(Image.open(io.BytesIO(data)).convert("L")) >= 128
        if arr.shape != (h, w):
            raise UnprocessableEntityError("The mask is not the image's size.", status=422)
        if not arr.any():
            raise UnprocessableEntityError("The mask is empty.", status=422, code="empty_mask")
        ys, xs = np.nonzero(arr)
        info = MaskInfo(
            mask_id=uuid.uuid4().hex[:12],
            version=vid,
            source="upload",
            width=w,
            height=h,
            bbox=[int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
            area=int(arr.sum()),
            score=None,
            label=None,
            created_at=time.time(),
            url="",
        )
        s.masks[info.mask_id] = (info, png(arr.astype(np.uint8) * 255))
        return info

    async def _progress(self, on_progress: Any, stage: str, total: int = 3) -> None:
        for step in range(1, total + 1):
            if on_progress is not None:
                on_progress(ProgressEvent(stage=stage, step=step, total=total))
            await asyncio.sleep(0)

    @staticmethod
    def _if_match(s: _Session, kw: dict[str, Any]) -> None:
        expected = kw.get("if_match")
        if expected is not None and expected != s.head:
            raise ConflictError(
                f"If-Match is {expected} but the session's head is {s.head}; reload and retry.",
                status=409,
                code="head_moved",
            )

    async def remove(self, session_id: str, mask_id: str | Sequence[str], **kw: Any) -> Version:
        self._check("inpaint")
        self.calls.append(("remove", {"mask_id": mask_id, **kw}))
        s = self._s(session_id)
        self._if_match(s, kw)
        arr = self._head_array(s)
        arr[self._mask(s, mask_id)] = 128
        await self._progress(kw.get("on_progress"), "inpaint", 1)
        return self._commit(s, png(arr), "remove")

    async def remove_preview(
        self, session_id: str, mask_id: str | Sequence[str], **kw: Any
    ) -> bytes:
        """What remove would commit (grey, lighter as ``dilate`` grows), committing nothing."""
        self._check("inpaint")
        self.calls.append(("remove_preview", {"mask_id": mask_id, **kw}))
        s = self._s(session_id)
        self._if_match(s, kw)
        arr = self._head_array(s)
        arr[self._mask(s, mask_id)] = min(255, 128 + int(kw.get("dilate", 10)))
        return png(arr)

    async def move(
        self, session_id: str, mask_id: str | Sequence[str], dx: int, dy: int, **kw: Any
    ) -> Version:
        self._check("inpaint")
        self.calls.append(("move", {"mask_id": mask_id, "dx": dx, "dy": dy, **kw}))
        s = self._s(session_id)
        arr = np.roll(self._head_array(s), (dy, dx), axis=(0, 1))
        return self._commit(s, png(arr), "move")

    async def replace(
        self, session_id: str, mask_id: str | Sequence[str], phrase: str, **kw: Any
    ) -> Version:
        self._check("gligen")
        self.calls.append(("replace", {"mask_id": mask_id, "phrase": phrase, **kw}))
        s = self._s(session_id)
        arr = self._head_array(s)
        return self._commit(s, png(255 - arr), "replace", kw.get("seed"))

    async def inpaint(
        self, session_id: str, boxes: Sequence[Sequence[float]], phrases: Sequence[str], **kw: Any
    ) -> Version:
        self._check("gligen")
        self.calls.append(("inpaint", {"boxes": boxes, "phrases": phrases, **kw}))
        s = self._s(session_id)
        arr = self._head_array(s)
        for x0, y0, x1, y1 in boxes:
            arr[int(y0) : int(y1), int(x0) : int(x1)] = (0, 200, 0)
        await self._progress(kw.get("on_progress"), "generate")
        return self._commit(s, png(arr), "inpaint", kw.get("seed") or 7)

    async def generate(self, session_id: str, prompt: str, **kw: Any) -> Version:
        self._check("gligen")
        self.calls.append(("generate", {"prompt": prompt, **kw}))
        s = self._s(session_id)
        rng = np.random.default_rng(kw.get("seed") or 0)
        arr = rng.integers(0, 255, (kw.get("height", 512), kw.get("width", 512), 3), np.uint8)
        await self._progress(kw.get("on_progress"), "generate")
        return self._commit(s, png(arr), "generate", kw.get("seed") or 11)

    async def chat_stream(
        self, session_id: str, message: str, **kw: Any
    ) -> AsyncIterator[ChatDelta | ChatReply]:
        self._check("llava")
        self.calls.append(("chat", {"message": message, **kw}))
        s = self._s(session_id)
        now = time.time()
        text = f"You said: {message}"
        for word in text.split(" "):
            yield ChatDelta(content=word + " ")
            await asyncio.sleep(0)
        user = Message(role="user", content=message, version=s.head, created_at=now)
        reply = Message(role="assistant", content=text + " ", version=s.head, created_at=now)
        s.messages += [user, reply]
        yield ChatReply(reply=reply, user=user)
