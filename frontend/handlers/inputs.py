"""Pure helpers (unit-tested): UI input values (annotator boxes, editor layers) into gateway arguments."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from frontend.handlers.errors import (
    ChatHistory,
    fail,
)
from lvi.contracts.gateway import (
    ServiceInfo,
    Session,
    Version,
)


# -- pure helpers (unit-tested) ------------------------------------------------------------------
def split_phrases(text: str | None) -> list[str]:
    """'a cat; a hat' -> ['a cat', 'a hat'] (semicolons or new lines, like the original)."""
    return [p.strip() for p in re.split(r"[;\n]", text or "") if p.strip()]


def annotator_boxes(value: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The boxes of an ``image_annotator`` value, in image pixels, drawing order."""
    if not value:
        return []
    return [b for b in value.get("boxes") or [] if b.get("xmax", 0) > b.get("xmin", 0)]


def drawn_boxes(value: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The boxes in the order the user drew them: the annotator lists the newest first (it
    prepends each new box), so the phrase list would otherwise pair backwards."""
    return annotator_boxes(value)[::-1]


def box_xyxy(box: dict[str, Any]) -> list[float]:
    return [float(box["xmin"]), float(box["ymin"]), float(box["xmax"]), float(box["ymax"])]


def boxes_and_phrases(
    value: dict[str, Any] | None, phrases_text: str | None
) -> tuple[list[list[float]], list[str]]:
    """Pair each drawn box with its phrase: the box's own label, else the n-th phrase of the
    semicolon-separated text (drawing order, as in the original)."""
    boxes = drawn_boxes(value)
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


def warn_unused_phrases(value: dict[str, Any] | None, phrases_text: str | None) -> None:
    """A warning toast naming the phrases no box takes (the edit goes on without them)."""
    unused = unused_phrases(value, phrases_text)
    if unused:
        listed = "; ".join(f"'{p}'" for p in unused)
        gr.Warning(
            f"Not used, no box for it: {listed}. Draw one box per phrase (or label the boxes).",
            title="Phrase not used",
        )


def unused_phrases(value: dict[str, Any] | None, phrases_text: str | None) -> list[str]:
    """The listed phrases no box takes (more phrases than unlabelled boxes), in the order
    :func:`boxes_and_phrases` would have used them: the user is told, not ignored."""
    boxes = drawn_boxes(value)
    listed = split_phrases(phrases_text)
    return [
        phrase
        for i, phrase in enumerate(listed)
        if i >= len(boxes) or str(boxes[i].get("label") or "").strip()
    ]


def painted_mask(editor_value: dict[str, Any] | None, width: int, height: int) -> np.ndarray | None:
    """What the ``ImageEditor``'s brush painted, as a bool array of the image's size
    (height, width), or None when nothing is painted."""
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
    if painted.shape != (height, width):
        # The editor's canvas follows the background's size; guard against a resized canvas.
        image = Image.fromarray(painted.astype(np.uint8) * 255, "L")
        painted = np.asarray(image.resize((width, height), Image.Resampling.NEAREST)) > 0
    return painted


def stroke_png_b64(editor_value: dict[str, Any] | None, width: int, height: int) -> str | None:
    """The brush strokes of the ``ImageEditor`` as a base64 single-channel PNG of the head's
    size (white = painted), or None when nothing is painted."""
    painted = painted_mask(editor_value, width, height)
    if painted is None:
        return None
    mask = Image.fromarray(painted.astype(np.uint8) * 255, "L")
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


def on_version(content: str, version: int | None) -> str:
    """A user turn as the chat shows it: with the version it was about ("(on v3)")."""
    return content if version is None else f"{content}\n\n*(on v{version})*"


def chat_history(session: Session) -> ChatHistory:
    """The session's stored messages as ``gr.Chatbot`` messages; each user turn says which
    version it was about."""
    return [
        {
            "role": m.role,
            "content": on_version(m.content, m.version) if m.role == "user" else m.content,
        }
        for m in session.messages
    ]


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
    act: bool = False  # the chat plans and runs edits (the UI's toggle; on there by default)


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
