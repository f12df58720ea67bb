"""A seem worker with known answers, for tests of chat ``act`` (the tiny models' text
detector has random weights, so what it finds for "dog" is arbitrary).

It speaks the seem worker's contract (``POST /v1/segment``) and finds, for text:
``unicorn`` nothing; ``dog`` two instances (one in the left third, one in the right third);
any other phrase one instance in the middle. A click is a 16x16 square around it, a box is
itself. ``merge`` joins them. ``GET /last`` is the last request's prompts (without the
image). Run it as a real process::

    python -m uvicorn fake_seem:app --app-dir tests/support --port P
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from fastapi import FastAPI
from PIL import Image

app = FastAPI()
_last: dict[str, Any] = {}


def _png(mask: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray((mask * 255).astype(np.uint8), "L").save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _rect(w: int, h: int, box: list[float]) -> np.ndarray:
    m = np.zeros((h, w), bool)
    x0, y0, x1, y1 = (round(v) for v in box)
    m[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
    return m


def _objects(req: dict[str, Any], w: int, h: int) -> list[tuple[np.ndarray, str]]:
    found: list[tuple[np.ndarray, str]] = []
    for phrase in [p.strip() for p in (req.get("text") or "").split(".") if p.strip()]:
        if "unicorn" in phrase:
            continue
        if "dog" in phrase:
            found.append((_rect(w, h, [w * 0.05, h * 0.3, w * 0.3, h * 0.7]), phrase))
            found.append((_rect(w, h, [w * 0.7, h * 0.3, w * 0.95, h * 0.7]), phrase))
        else:
            found.append((_rect(w, h, [w * 0.4, h * 0.4, w * 0.6, h * 0.6]), phrase))
    labels = req.get("labels") or [1] * len(req.get("points") or [])
    for (x, y), label in zip(req.get("points") or [], labels, strict=False):
        if label:
            found.append((_rect(w, h, [x - 8, y - 8, x + 8, y + 8]), "object"))
    for box in req.get("boxes") or []:
        found.append((_rect(w, h, box), "object"))
    return found


@app.get("/v2/health/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


@app.get("/v1/info")
async def info() -> dict[str, Any]:
    return {"name": "seem", "backend": "fake"}


@app.get("/last")
async def last() -> dict[str, Any]:
    return _last


@app.post("/v1/segment")
async def segment(req: dict[str, Any]) -> dict[str, Any]:
    image = Image.open(io.BytesIO(base64.b64decode(req["image"].split(",")[-1])))
    w, h = image.size
    _last.clear()
    _last.update({k: v for k, v in req.items() if k not in ("image", "stroke")})
    objects = _objects(req, w, h)
    if req.get("merge") and objects:
        union = np.zeros((h, w), bool)
        for m, _ in objects:
            union |= m
        objects = [(union, ", ".join(sorted({label for _, label in objects})))]
    masks = []
    for m, label in objects:
        ys, xs = np.nonzero(m)
        bbox = (
            [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
            if len(xs)
            else [0, 0, 0, 0]
        )
        masks.append(
            {"mask": _png(m), "score": 0.9, "bbox": bbox, "area": int(m.sum()), "label": label}
        )
    return {"masks": masks, "width": w, "height": h, "backend": "fake"}
