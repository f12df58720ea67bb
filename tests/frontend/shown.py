"""What the head image editor shows, read back from the page.

The editor (``#head-editor``, Gradio's ImageEditor) draws the head on a canvas, not in an
``<img>``: the only faithful check that a user sees the image is the pixels on screen. These
helpers screenshot the editor's canvas and say whether it shows a picture (unlike the empty
editor of a fresh page, screenshotted first as ``blank``) and whether it is the same picture as
an earlier screenshot. (Not "more than a flat colour": the tiny models' edits often are one.)
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Page

# The centre of the canvas: inside the fitted image whatever its aspect ratio, and away from
# the editor's toolbars, which would make even a blank editor look textured.
CENTRE = 0.6  # fraction of the canvas kept around its centre (toolbars sit at its edges)


def head_pixels(page: Page) -> np.ndarray:
    """The centre of the head editor's canvas as on screen (RGB, screen pixels)."""
    canvas = page.locator("#head-editor canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    # A clip of the page, not an element screenshot: that one waits for the element to be
    # "stable", which a canvas being redrawn (a 12 MP image) may not be for a long while.
    raw = page.screenshot(clip=box)
    shot = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
    h, w = shot.shape[:2]
    dy, dx = int(h * CENTRE / 2), int(w * CENTRE / 2)
    return shot[h // 2 - dy : h // 2 + dy, w // 2 - dx : w // 2 + dx]


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two same-size screenshots (0: identical)."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def wait_head_shown(
    page: Page,
    blank: np.ndarray,
    like: np.ndarray | None = None,
    timeout: float = 30.0,
    evidence: Path | None = None,
) -> np.ndarray:
    """Wait until the editor shows a picture, not the empty editor ``blank`` (and, with
    ``like``, that same picture: within a small difference, for scaling); its pixels. Fails
    with what it saw instead (and a screenshot of the page at ``evidence``)."""
    deadline = time.monotonic() + timeout
    while True:
        pixels = head_pixels(page)
        same = like is None or (like.shape == pixels.shape and difference(like, pixels) < 4.0)
        shown = pixels.shape == blank.shape and difference(pixels, blank) > 10.0
        if shown and same:
            return pixels
        if time.monotonic() > deadline:
            what = f"difference from the empty editor {difference(pixels, blank):.1f}"
            if like is not None and like.shape == pixels.shape:
                what += f", difference from the expected picture {difference(like, pixels):.1f}"
            if evidence is not None:
                page.screenshot(path=str(evidence))
            raise AssertionError(f"the head image is not shown after {timeout:.0f}s ({what})")
        page.wait_for_timeout(300)
