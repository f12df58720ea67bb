"""What the UI does, as plain classes over the gateway SDK (no Gradio layout in here).

:class:`Controller` takes an :class:`~lvi.client.AsyncLviClient` (or anything with the same
methods) and an :class:`ImageFiles` cache, and turns UI input values (annotator boxes,
editor layers, clicks) into gateway calls, and gateway answers into small view objects
(:class:`HeadView`, :class:`MaskView`) that ``frontend.app`` maps onto components.

Per-browser state lives in :class:`UiState` (a ``gr.State`` value, one per browser tab) and
the gateway session id in the browser's localStorage; nothing here is module-level, so two
users never share anything (the original demo shared globals across users).

Every failure reaches the user as ``gr.Error`` with the gateway's own message (the error
envelope), never a stack trace.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import gradio as gr
import numpy as np
from PIL import Image
from pydantic import ValidationError

from lvi.client import (
    APIConnectionError,
    APIError,
    NotFoundError,
    RateLimitError,
)
from lvi.contracts.gateway import (
    ChatDelta,
    ChatReply,
    MaskInfo,
    ProgressEvent,
    ServiceInfo,
    Session,
    Version,
)

TINY_BANNER = (
    "**Random-weight models:** outputs are meaningless. This stack runs the `tiny` profile "
    "(for tests and offline machines); set `LVI_PROFILE=cpu` or `gpu` for real models."
)
Progress = Callable[[ProgressEvent], None]
ChatHistory = list[dict[str, Any]]
DEFAULT_GEN_SIZE = 512  # SD-1.4's native size; used until the gateway reports the model's


def native_size(info: ServiceInfo) -> int:
    """The generation model's native side (gligen's ``/v1/info`` ``native_size``), fitted to
    the UI's size sliders (256-1024, steps of 64); 512 when the gateway does not know it."""
    for w in info.workers:
        if w.name == "gligen" and w.info:
            try:
                side = int((w.info.get("native_size") or {})["generate"])
            except (KeyError, TypeError, ValueError):
                break
            return min(1024, max(256, round(side / 64) * 64))
    return DEFAULT_GEN_SIZE


def _no_progress(_: ProgressEvent) -> None:
    return None


class Gateway(Protocol):
    """The part of :class:`lvi.client.AsyncLviClient` the UI uses (a fake can stand in)."""

    async def info(self) -> ServiceInfo: ...
    async def create_session(self, title: str | None = None) -> Session: ...
    async def get_session(self, session_id: str) -> Session: ...
    async def upload_image(self, session_id: str, image: bytes | str | Path) -> Version: ...
    async def get_image(self, session_id: str, version: int | str = "head") -> bytes: ...
    async def get_mask(self, session_id: str, mask_id: str) -> bytes: ...
    async def undo(self, session_id: str) -> Version: ...
    async def redo(self, session_id: str) -> Version: ...
    async def checkout(self, session_id: str, version: int) -> Version: ...
    async def segment(self, session_id: str, **kw: Any) -> MaskInfo: ...
    async def remove(self, session_id: str, mask_id: str, **kw: Any) -> Version: ...
    async def move(self, session_id: str, mask_id: str, dx: int, dy: int, **kw: Any) -> Version: ...
    async def replace(self, session_id: str, mask_id: str, phrase: str, **kw: Any) -> Version: ...
    async def inpaint(
        self, session_id: str, boxes: Sequence[Sequence[float]], phrases: Sequence[str], **kw: Any
    ) -> Version: ...
    async def generate(self, session_id: str, prompt: str, **kw: Any) -> Version: ...
    def chat_stream(
        self, session_id: str, message: str, **kw: Any
    ) -> AsyncIterator[ChatDelta | ChatReply]: ...


# -- errors -----------------------------------------------------------------------------------
def describe_error(exc: BaseException) -> tuple[str, str]:
    """(title, message) a person can act on, from an SDK or validation error."""
    if isinstance(exc, APIConnectionError):
        return "Gateway unreachable", (
            "The gateway cannot be reached right now. Check that it is running, then try again."
        )
    if isinstance(exc, RateLimitError):
        return "Busy", f"{exc.message} Try again in {exc.retry_after:g} s."
    if isinstance(exc, APIError):
        title = {
            400: "Invalid request",
            401: "Not authorised",
            404: "Not found",
            409: "Conflict",
            413: "Too large",
            415: "Unsupported image",
            422: "Invalid input",
            503: "Service unavailable",
            504: "Timed out",
        }.get(exc.status, "Gateway error")
        return title, exc.message or f"The gateway answered {exc.status}."
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:3]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return "Invalid input", "; ".join(parts)
    return "Error", str(exc)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn gateway and validation errors into ``gr.Error`` (a readable toast, no trace)."""
    try:
        yield
    except gr.Error:
        raise
    except (APIError, ValidationError) as exc:
        title, message = describe_error(exc)
        raise gr.Error(message, title=title, print_exception=False) from None


def fail(message: str, title: str = "Cannot do that yet") -> gr.Error:
    """An error caused by the user's input (what to do next is in the message)."""
    return gr.Error(message, title=title, print_exception=False)


# -- state and views --------------------------------------------------------------------------
@dataclass
class UiState:
    """One browser tab's UI state (a ``gr.State`` value, deep-copied per tab)."""

    session_id: str | None = None
    head: int | None = None
    head_path: str | None = None
    width: int = 0
    height: int = 0
    mask: dict[str, Any] | None = None  # MaskInfo of the selected object
    points: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)


@dataclass
class HeadView:
    """What the image panel shows after the head moved."""

    image: str | None
    width: int
    height: int
    gallery: list[tuple[str, str]]
    selected: int | None
    summary: str
    can_undo: bool
    can_redo: bool
    download: str | None = None  # the head's file under a readable name


@dataclass
class MaskView:
    """The selected object: the head image with its mask (and the clicked points) on top."""

    image: str
    annotations: list[tuple[np.ndarray | tuple[int, int, int, int], str]]
    summary: str
    bbox: list[int] | None
    label: str


@dataclass
class Loaded:
    """What a page load shows: the session, its chat, and whether models are random."""

    state: UiState
    head: HeadView
    chat: ChatHistory
    banner: str | None
    stored: dict[str, Any]
    gen_size: int = DEFAULT_GEN_SIZE  # the default width and height offered for generation


# -- image files --------------------------------------------------------------------------------
class ImageFiles:
    """Gateway images written once to a private temp folder, named by content hash.

    Gradio serves files from the system temp folder as they are, so the UI shows the exact
    bytes the gateway stores (no re-encoding), and a version fetched once is never fetched
    again. Oldest files beyond ``max_files`` are deleted.
    """

    def __init__(self, folder: Path | None = None, max_files: int = 2000) -> None:
        self._folder = folder
        self.max_files = max_files
        self._files: OrderedDict[str, Path] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        if self._folder is None:
            # Created on first use, never at import time; under the system temp folder,
            # which Gradio allows serving from.
            self._folder = Path(tempfile.mkdtemp(prefix="lvi-frontend-"))
        self._folder.mkdir(parents=True, exist_ok=True)
        return self._folder

    def _remember(self, key: str, path: Path) -> Path:
        with self._lock:
            self._files[key] = path
            self._files.move_to_end(key)
            while len(self._files) > self.max_files:
                _, old = self._files.popitem(last=False)
                old.unlink(missing_ok=True)
        return path

    def known(self, key: str) -> Path | None:
        with self._lock:
            path = self._files.get(key)
        return path if path is not None and path.exists() else None

    def write(self, key: str, data: bytes, suffix: str) -> Path:
        path = self.folder / f"{key}{suffix}"
        tmp = path.with_suffix(path.suffix + f".{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a concurrent reader never sees half a file
        return self._remember(key, path)

    async def version(self, client: Gateway, session_id: str, version: Version) -> Path:
        """The file of one version's image (fetched from the gateway the first time)."""
        key = version.image_hash
        path = self.known(key)
        if path is None:
            data = await client.get_image(session_id, version.id)
            suffix = {"image/jpeg": ".jpg", "image/webp": ".webp"}.get(version.content_type, ".png")
            path = self.write(key, data, suffix)
        return path

    def named(self, path: Path, name: str) -> Path:
        """The same file under a readable name (what a download saves as): a hard link in a
        folder of its own, so no copy and no clash between sessions."""
        folder = self.folder / "named" / path.stem
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if not target.exists():
            try:
                os.link(path, target)
            except OSError:  # another file system, or links not allowed: copy instead
                shutil.copyfile(path, target)
        return target

    def blank(self, width: int, height: int) -> Path:
        """A white canvas (the layout surface of the Generate tab)."""
        key = f"blank-{width}x{height}"
        path = self.known(key)
        if path is None:
            buf = io.BytesIO()
            Image.new("RGB", (width, height), "white").save(buf, format="PNG")
            path = self.write(key, buf.getvalue(), ".png")
        return path


# -- pure helpers (unit-tested) ------------------------------------------------------------------
def split_phrases(text: str | None) -> list[str]:
    """'a cat; a hat' -> ['a cat', 'a hat'] (semicolons or new lines, like the original)."""
    return [p.strip() for p in re.split(r"[;\n]", text or "") if p.strip()]


def annotator_boxes(value: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The boxes of an ``image_annotator`` value, in image pixels, drawing order."""
    if not value:
        return []
    return [b for b in value.get("boxes") or [] if b.get("xmax", 0) > b.get("xmin", 0)]


def box_xyxy(box: dict[str, Any]) -> list[float]:
    return [float(box["xmin"]), float(box["ymin"]), float(box["xmax"]), float(box["ymax"])]


def boxes_and_phrases(
    value: dict[str, Any] | None, phrases_text: str | None
) -> tuple[list[list[float]], list[str]]:
    """Pair each drawn box with its phrase: the box's own label, else the n-th phrase of the
    semicolon-separated text (drawing order, as in the original)."""
    boxes = annotator_boxes(value)
    listed = split_phrases(phrases_text)
    out_boxes, out_phrases = [], []
    for i, box in enumerate(boxes):
        label = str(box.get("label") or "").strip()
        phrase = label or (listed[i] if i < len(listed) else "")
        if not phrase:
            raise fail(
                f"Box {i + 1} has no phrase: label the box, or list one phrase per box "
                "separated by ';'.",
                "Missing phrase",
            )
        out_boxes.append(box_xyxy(box))
        out_phrases.append(phrase)
    return out_boxes, out_phrases


def stroke_png_b64(editor_value: dict[str, Any] | None, width: int, height: int) -> str | None:
    """The brush strokes of the ``ImageEditor`` as a base64 single-channel PNG of the head's
    size (white = painted), or None when nothing is painted."""
    if not editor_value or not width or not height:
        return None
    layers = [np.asarray(layer) for layer in editor_value.get("layers") or [] if layer is not None]
    painted = None
    for layer in layers:
        if layer.ndim != 3 or layer.shape[2] < 4:
            continue
        alpha = layer[..., 3] > 0
        painted = alpha if painted is None else (painted | alpha)
    if painted is None or not painted.any():
        return None
    mask = Image.fromarray(painted.astype(np.uint8) * 255, "L")
    if mask.size != (width, height):
        # The editor's canvas follows the background's size; guard against a resized canvas.
        mask = mask.resize((width, height), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    mask.save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def seed_or_none(seed: float | None) -> int | None:
    """The seed control: a negative or empty value means 'pick one at random'."""
    if seed is None or seed < 0:
        return None
    return int(seed)


def version_caption(v: Version, head: int | None) -> str:
    mark = " (head)" if v.id == head else ""
    return f"v{v.id} {v.operation}{mark}"


def chat_history(session: Session) -> ChatHistory:
    """The session's stored messages as ``gr.Chatbot`` messages."""
    return [{"role": m.role, "content": m.content} for m in session.messages]


@dataclass
class DiffusionParams:
    """The advanced options every generation shares."""

    steps: int = 25
    guidance_scale: float = 7.5
    seed: int | None = None

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "steps": int(self.steps),
            "guidance_scale": float(self.guidance_scale),
        }
        if self.seed is not None:
            out["seed"] = self.seed
        return out


@dataclass
class ChatParams:
    temperature: float = 0.2
    top_p: float = 0.7
    max_tokens: int = 512


# -- the controller --------------------------------------------------------------------------------
class Controller:
    """Every UI action, as calls to the gateway. Stateless itself: the per-tab state comes in
    as a :class:`UiState` and goes out as a new one."""

    def __init__(self, client: Gateway, files: ImageFiles | None = None) -> None:
        self.client = client
        self.files = files or ImageFiles()

    # sessions
    async def info_banner(self) -> str | None:
        """The tiny-profile banner text, or None (also None while the gateway is starting)."""
        return (await self.page_info())[0]

    async def page_info(self) -> tuple[str | None, int]:
        """The banner (as :meth:`info_banner`) and the generation model's native size, from
        one ``/v1/info`` call; (None, 512) while the gateway is starting."""
        try:
            info = await self.client.info()
        except APIError:
            return None, DEFAULT_GEN_SIZE
        return (TINY_BANNER if info.random_weights else None), native_size(info)

    async def open(self, stored: dict[str, Any] | None) -> Loaded:
        """A page load: resume the session stored in this browser, else start a new one."""
        banner, gen_size = await self.page_info()
        session: Session | None = None
        sid = (stored or {}).get("session_id")
        with user_errors():
            if sid:
                try:
                    session = await self.client.get_session(str(sid))
                except NotFoundError:
                    session = None  # expired or deleted: start afresh
            if session is None:
                session = await self.client.create_session(title="LLaVA-Interactive UI")
            state, head = await self._view(UiState(session_id=session.id), session)
        return Loaded(
            state, head, chat_history(session), banner, {"session_id": session.id}, gen_size
        )

    async def new_session(self, state: UiState) -> Loaded:
        """Start over: a fresh gateway session (the old one stays until it expires)."""
        return await self.open(None)

    async def ensure_session(self, state: UiState) -> UiState:
        """API callers (gradio_client) never ran the page load: give them a session."""
        if state.session_id:
            return state
        with user_errors():
            session = await self.client.create_session(title="LLaVA-Interactive API")
        return replace(state, session_id=session.id)

    async def _view(
        self, state: UiState, session: Session | None = None
    ) -> tuple[UiState, HeadView]:
        """Re-read the session and show its head; the selected object and clicks are reset,
        since they belong to the previous head."""
        assert state.session_id
        if session is None:
            session = await self.client.get_session(state.session_id)
        head = next((v for v in session.versions if v.id == session.head), None)
        paths = await self._version_paths(session)
        gallery = [(str(paths[v.id]), version_caption(v, session.head)) for v in session.versions]
        selected = next((i for i, v in enumerate(session.versions) if v.id == session.head), None)
        if head is None:
            view = HeadView(
                None,
                0,
                0,
                gallery,
                None,
                "No image yet: upload one or pick an example.",
                False,
                False,
            )
            return replace(
                state, head=None, head_path=None, width=0, height=0, mask=None, points=[], labels=[]
            ), view
        path = str(paths[head.id])
        seed = f" · seed {head.seed}" if head.seed is not None else ""
        summary = (
            f"**v{head.id}** of {len(session.versions)} · {head.operation} · "
            f"{head.width}x{head.height}{seed}"
        )
        download = self.files.named(paths[head.id], f"lvi-v{head.id}{paths[head.id].suffix}")
        view = HeadView(
            path,
            head.width,
            head.height,
            gallery,
            selected,
            summary,
            session.can_undo,
            session.can_redo,
            str(download),
        )
        new_state = UiState(
            session_id=state.session_id,
            head=head.id,
            head_path=path,
            width=head.width,
            height=head.height,
        )
        return new_state, view

    async def _version_paths(self, session: Session) -> dict[int, Path]:
        sem = asyncio.Semaphore(4)  # a long history must not open dozens of connections

        async def one(v: Version) -> tuple[int, Path]:
            async with sem:
                return v.id, await self.files.version(self.client, session.id, v)

        return dict(await asyncio.gather(*(one(v) for v in session.versions)))

    async def refresh(self, state: UiState) -> tuple[UiState, HeadView]:
        state = await self.ensure_session(state)
        with user_errors():
            return await self._view(state)

    # image history
    async def upload(self, state: UiState, path: str | None) -> tuple[UiState, HeadView]:
        if not path:
            raise fail("Choose an image file to upload.")
        state = await self.ensure_session(state)
        assert state.session_id
        with user_errors():
            await self.client.upload_image(state.session_id, Path(path))
            return await self._view(state)

    async def undo(self, state: UiState) -> tuple[UiState, HeadView]:
        state = await self.ensure_session(state)
        assert state.session_id
        with user_errors():
            await self.client.undo(state.session_id)
            return await self._view(state)

    async def redo(self, state: UiState) -> tuple[UiState, HeadView]:
        state = await self.ensure_session(state)
        assert state.session_id
        with user_errors():
            await self.client.redo(state.session_id)
            return await self._view(state)

    async def checkout(self, state: UiState, version: int) -> tuple[UiState, HeadView]:
        state = await self.ensure_session(state)
        assert state.session_id
        with user_errors():
            await self.client.checkout(state.session_id, int(version))
            return await self._view(state)

    async def checkout_index(self, state: UiState, index: int) -> tuple[UiState, HeadView]:
        """A click on the history strip: its n-th thumbnail is the n-th version."""
        state = await self.ensure_session(state)
        assert state.session_id
        with user_errors():
            session = await self.client.get_session(state.session_id)
        if not 0 <= index < len(session.versions):
            raise fail("That version is no longer in the history.")
        return await self.checkout(state, session.versions[index].id)

    # segmentation
    def _need_image(self, state: UiState) -> None:
        if not state.session_id or state.head is None:
            raise fail("Upload an image (or pick an example) first.")

    def _need_object(self, state: UiState) -> dict[str, Any]:
        self._need_image(state)
        if not state.mask:
            raise fail("Select an object first: segment it by box, click, stroke or text.")
        return state.mask

    async def segment(
        self,
        state: UiState,
        *,
        box_value: dict[str, Any] | None = None,
        editor_value: dict[str, Any] | None = None,
        text: str | None = None,
    ) -> tuple[UiState, MaskView]:
        """Segment the head with every prompt given at once (SAM-style): the clicked points
        in ``state``, the boxes drawn, the brush strokes, and the referring text."""
        self._need_image(state)
        assert state.session_id
        boxes = [box_xyxy(b) for b in annotator_boxes(box_value)]
        stroke = stroke_png_b64(editor_value, state.width, state.height)
        text = (text or "").strip() or None
        if not (state.points or boxes or stroke or text):
            raise fail(
                "Give the segmenter a prompt: draw a box, click the object, paint over it "
                "with the brush, or type what it is."
            )
        with user_errors():
            info = await self.client.segment(
                state.session_id,
                points=state.points or None,
                labels=state.labels or None,
                boxes=boxes or None,
                stroke=stroke,
                text=text,
            )
            png = await self.client.get_mask(state.session_id, info.mask_id)
        state = replace(state, mask=info.model_dump(mode="json"))
        return state, self._mask_view(state, info, png)

    async def click(
        self,
        state: UiState,
        xy: Sequence[float],
        include: bool,
        *,
        box_value: dict[str, Any] | None = None,
        editor_value: dict[str, Any] | None = None,
        text: str | None = None,
    ) -> tuple[UiState, MaskView]:
        """A click on the image adds a positive or negative point, then segments again."""
        self._need_image(state)
        x, y = float(xy[0]), float(xy[1])
        state = replace(
            state, points=[*state.points, [x, y]], labels=[*state.labels, 1 if include else 0]
        )
        return await self.segment(state, box_value=box_value, editor_value=editor_value, text=text)

    def clear_prompts(self, state: UiState) -> UiState:
        return replace(state, points=[], labels=[], mask=None)

    def _mask_view(self, state: UiState, info: MaskInfo, png: bytes) -> MaskView:
        mask = np.asarray(Image.open(io.BytesIO(png)).convert("L")) > 0
        if mask.shape != (state.height, state.width):
            mask = (
                np.asarray(
                    Image.fromarray(mask.astype(np.uint8) * 255).resize(
                        (state.width, state.height), Image.Resampling.NEAREST
                    )
                )
                > 0
            )
        label = info.label or "object"
        annotations: list[tuple[np.ndarray | tuple[int, int, int, int], str]] = [
            (mask.astype(np.float32), label)
        ]
        r = max(3, round(min(state.width, state.height) / 80))
        for (x, y), lab in zip(state.points, state.labels, strict=False):
            box = (round(x) - r, round(y) - r, round(x) + r, round(y) + r)
            annotations.append((box, "include" if lab else "exclude"))
        parts = [f"**{label}**"]
        if info.score is not None:
            parts.append(f"score {info.score:.2f}")
        if info.area is not None:
            parts.append(f"{info.area} px")
        if info.bbox:
            parts.append("box " + ", ".join(str(v) for v in info.bbox))
        assert state.head_path
        return MaskView(state.head_path, annotations, " · ".join(parts), info.bbox, label)

    def move_box(self, state: UiState) -> dict[str, Any] | None:
        """The move annotator's value: the head with the selected object's box, to drag."""
        if state.head_path is None:
            return None
        mask = state.mask
        boxes = []
        if mask and mask.get("bbox"):
            x0, y0, x1, y1 = mask["bbox"]
            boxes.append(
                {
                    "xmin": x0,
                    "ymin": y0,
                    "xmax": x1,
                    "ymax": y1,
                    "label": mask.get("label") or "object",
                }
            )
        return {"image": state.head_path, "boxes": boxes}

    # edits
    async def remove(
        self, state: UiState, dilate: int, progress: Progress = _no_progress
    ) -> tuple[UiState, HeadView]:
        mask = self._need_object(state)
        assert state.session_id
        with user_errors():
            await self.client.remove(
                state.session_id,
                mask["mask_id"],
                dilate=int(dilate),
                if_match=state.head,
                on_progress=progress,
            )
            return await self._view(state)

    async def move(
        self,
        state: UiState,
        box_value: dict[str, Any] | None,
        phrase: str | None,
        dilate: int,
        params: DiffusionParams,
        progress: Progress = _no_progress,
    ) -> tuple[UiState, HeadView]:
        """Move the object to where its box was dragged: its own pixels, or regenerated
        from ``phrase`` (GLIGEN) when one is given."""
        mask = self._need_object(state)
        assert state.session_id
        boxes = annotator_boxes(box_value)
        if not boxes or not mask.get("bbox"):
            raise fail("Drag the object's box to where the object should go.")
        x0, y0 = mask["bbox"][0], mask["bbox"][1]
        dx, dy = round(boxes[0]["xmin"] - x0), round(boxes[0]["ymin"] - y0)
        phrase = (phrase or "").strip() or None
        if dx == 0 and dy == 0 and phrase is None:
            raise fail("Drag the object's box to where the object should go.")
        with user_errors():
            await self.client.move(
                state.session_id,
                mask["mask_id"],
                dx,
                dy,
                phrase=phrase,
                dilate=int(dilate),
                if_match=state.head,
                on_progress=progress,
                **params.kwargs(),
            )
            return await self._view(state)

    async def replace_object(
        self,
        state: UiState,
        phrase: str | None,
        use_mask: bool,
        params: DiffusionParams,
        progress: Progress = _no_progress,
    ) -> tuple[UiState, HeadView]:
        mask = self._need_object(state)
        assert state.session_id
        phrase = (phrase or "").strip()
        if not phrase:
            raise fail("Type what the object should become, e.g. 'a green apple'.")
        with user_errors():
            await self.client.replace(
                state.session_id,
                mask["mask_id"],
                phrase,
                use_mask=bool(use_mask),
                if_match=state.head,
                on_progress=progress,
                **params.kwargs(),
            )
            return await self._view(state)

    async def inpaint(
        self,
        state: UiState,
        box_value: dict[str, Any] | None,
        phrases_text: str | None,
        prompt: str | None,
        params: DiffusionParams,
        progress: Progress = _no_progress,
    ) -> tuple[UiState, HeadView]:
        """Add new objects: each drawn box with its phrase."""
        self._need_image(state)
        assert state.session_id
        boxes, phrases = boxes_and_phrases(box_value, phrases_text)
        if not boxes:
            raise fail("Draw a box where each new object should go.")
        with user_errors():
            await self.client.inpaint(
                state.session_id,
                boxes,
                phrases,
                prompt=(prompt or "").strip() or None,
                if_match=state.head,
                on_progress=progress,
                **params.kwargs(),
            )
            return await self._view(state)

    async def generate(
        self,
        state: UiState,
        prompt: str | None,
        box_value: dict[str, Any] | None,
        phrases_text: str | None,
        width: int,
        height: int,
        beta: float,
        params: DiffusionParams,
        progress: Progress = _no_progress,
    ) -> tuple[UiState, HeadView]:
        """A new image from a caption, optionally with boxes and phrases on the canvas."""
        prompt = (prompt or "").strip()
        if not prompt:
            raise fail("Describe the image to generate.")
        state = await self.ensure_session(state)
        assert state.session_id
        boxes, phrases = boxes_and_phrases(box_value, phrases_text)
        boxes = self._scale_boxes(box_value, boxes, int(width), int(height))
        with user_errors():
            await self.client.generate(
                state.session_id,
                prompt,
                boxes=boxes,
                phrases=phrases,
                width=int(width),
                height=int(height),
                scheduled_sampling_beta=float(beta),
                on_progress=progress,
                **params.kwargs(),
            )
            return await self._view(state)

    @staticmethod
    def _scale_boxes(
        value: dict[str, Any] | None, boxes: list[list[float]], width: int, height: int
    ) -> list[list[float]]:
        """Boxes drawn on a canvas of another size are scaled to the output size."""
        if not boxes or not value or value.get("image") is None:
            return boxes
        image = value["image"]
        if isinstance(image, np.ndarray):
            ch, cw = image.shape[:2]
        elif isinstance(image, Image.Image):
            cw, ch = image.size
        else:
            try:
                with Image.open(str(image)) as im:
                    cw, ch = im.size
            except OSError:
                return boxes
        sx, sy = width / cw, height / ch
        return [[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy] for b in boxes]

    def canvas(self, width: int, height: int, value: dict[str, Any] | None) -> dict[str, Any]:
        """A white canvas of the output size, with the boxes drawn so far scaled onto it."""
        width, height = int(width), int(height)
        path = str(self.files.blank(width, height))
        boxes = annotator_boxes(value)
        if boxes and value and value.get("image") is not None:
            scaled = self._scale_boxes(value, [box_xyxy(b) for b in boxes], width, height)
            boxes = [
                {
                    "xmin": round(s[0]),
                    "ymin": round(s[1]),
                    "xmax": round(s[2]),
                    "ymax": round(s[3]),
                    "label": b.get("label") or "",
                }
                for s, b in zip(scaled, boxes, strict=True)
            ]
        return {"image": path, "boxes": boxes}

    # chat
    async def chat(
        self,
        state: UiState,
        message: str | None,
        history: ChatHistory | None,
        params: ChatParams,
    ) -> AsyncIterator[ChatHistory]:
        """Stream one turn about the head image: yields the history as the reply grows."""
        message = (message or "").strip()
        if not message:
            raise fail("Type a message first.")
        state = await self.ensure_session(state)
        assert state.session_id
        history = [*(history or []), {"role": "user", "content": message}]
        reply = ""
        yield [*history, {"role": "assistant", "content": "…"}]
        try:
            async for item in self.client.chat_stream(
                state.session_id,
                message,
                temperature=float(params.temperature),
                top_p=float(params.top_p),
                max_tokens=int(params.max_tokens),
            ):
                if isinstance(item, ChatDelta):
                    reply += item.content
                    yield [*history, {"role": "assistant", "content": reply}]
                elif isinstance(item, ChatReply):
                    reply = item.reply.content
        except (APIError, ValidationError) as exc:
            # A warning toast, not gr.Error: Gradio blanks a chatbot whose event failed, and
            # the conversation must stay on screen. The failure is also noted in the chat.
            title, text = describe_error(exc)
            gr.Warning(text, title=title)
            note = f"{reply}\n\n" if reply else ""
            yield [*history, {"role": "assistant", "content": f"{note}⚠️ {text}"}]
            return
        yield [*history, {"role": "assistant", "content": reply}]

    async def clear_chat(self, state: UiState) -> ChatHistory:
        """Forget the conversation in the gateway too (images and versions stay)."""
        if state.session_id:
            with user_errors():
                await self.client.clear_messages(state.session_id)
        return []
