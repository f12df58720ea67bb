"""Per-tab UI state, the view objects the layout maps onto components, and the image-file cache."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from frontend.handlers.errors import (
    ChatHistory,
    Gateway,
)
from lvi.contracts.gateway import (
    Version,
)


# -- state and views --------------------------------------------------------------------------
@dataclass
class UiState:
    """One browser tab's UI state (a ``gr.State`` value, deep-copied per tab)."""

    session_id: str | None = None
    # The signed-in user's bearer credential (a gateway sign-in token, or the API key in the
    # explicit single-user mode). Kept server-side in this tab's state: a Gradio API caller
    # starts with none, so it can reach no one's session without signing in itself.
    token: str | None = None
    principal: str | None = None
    address: str | None = None  # the visitor's address, forwarded to the gateway
    head: int | None = None
    head_path: str | None = None
    width: int = 0
    height: int = 0
    mask: dict[str, Any] | None = None  # MaskInfo of the selected object (or instances)
    instances: list[dict[str, Any]] = field(default_factory=list)  # the last segment's masks
    chosen: list[str] = field(default_factory=list)  # the mask ids of the instances picked
    points: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    # The kind of prompt the user gave last on this head ("click", "box", "stroke", "text"):
    # starting another kind clears the old one, so prompts never silently merge.
    prompt_kind: str | None = None


def browser_value(state: UiState) -> dict[str, Any]:
    """What this browser remembers (its localStorage): the session to resume and the sign-in
    token (never an API key: a key is exchanged for a revocable token at sign-in)."""
    return {"session_id": state.session_id, "token": state.token}


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
    gen_size: int = 512  # the default width and height offered for generation (native size)


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

    def scaled(self, path: Path, size: tuple[int, int]) -> Path:
        """A smaller copy of ``path`` at ``size`` for display only (JPEG, written once)."""
        key = f"{path.stem}-{size[0]}x{size[1]}"
        known = self.known(key)
        if known is not None:
            return known
        with Image.open(path) as im:
            im.draft("RGB", size)  # a JPEG decodes straight at a fraction of its size
            small = im.convert("RGB").resize(size, Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        small.save(buf, format="JPEG", quality=90)
        return self.write(key, buf.getvalue(), ".jpg")

    def blank(self, width: int, height: int) -> Path:
        """A white canvas (the layout surface of the Generate tab)."""
        key = f"blank-{width}x{height}"
        path = self.known(key)
        if path is None:
            buf = io.BytesIO()
            Image.new("RGB", (width, height), "white").save(buf, format="PNG")
            path = self.write(key, buf.getvalue(), ".png")
        return path
