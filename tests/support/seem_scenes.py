"""Synthetic scenes with known ground truth for segmentation tests (no downloads)."""

from __future__ import annotations

import cv2
import numpy as np


def textured_scene(
    seed: int, width: int = 320, height: int = 240
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """An object with its own colour statistics on a textured background.

    Returns (rgb, ground-truth bool mask, a loose box around the object). The background is a
    smooth multi-colour field plus stripes and pixel noise; the object (an ellipse or a random
    star-shaped polygon) has its own mean colour, texture and noise. The box is the object's
    bbox grown by 8-25 % on each side (randomly), as a user would draw it.
    """
    rng = np.random.default_rng(seed)
    h, w = height, width
    base = rng.uniform(70, 185, 3)
    field = cv2.resize(rng.normal(0, 45, (6, 6, 3)), (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    freq = rng.uniform(0.08, 0.25, 2)
    stripes = (12 * np.sin(xx * freq[0] + yy * freq[1]))[..., None]
    bg = base + field + stripes + rng.normal(0, 16, (h, w, 3))

    gt = np.zeros((h, w), np.uint8)
    cx, cy = rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h
    size = min(w, h)
    if seed % 2 == 0:
        axes = (int(rng.uniform(0.15, 0.3) * size), int(rng.uniform(0.15, 0.3) * size))
        cv2.ellipse(gt, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        radii = rng.uniform(0.15, 0.3, 9) * size
        poly = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
        cv2.fillPoly(gt, [poly.astype(np.int32)], 1)
    # The object's colour: a random direction away from the background mean.
    direction = rng.normal(0, 1, 3)
    direction /= np.linalg.norm(direction)
    colour = np.clip(base + direction * rng.uniform(60, 90), 15, 240)
    texture = cv2.resize(rng.normal(0, 22, (5, 5, 3)), (w, h), interpolation=cv2.INTER_CUBIC)
    obj = colour + texture + rng.normal(0, 16, (h, w, 3))
    rgb = np.clip(np.where(gt[..., None] > 0, obj, bg), 0, 255).astype(np.uint8)

    ys, xs = np.nonzero(gt)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    m = rng.uniform(0.08, 0.25, 4)
    box = (
        max(0.0, x0 - m[0] * (x1 - x0)),
        max(0.0, y0 - m[1] * (y1 - y0)),
        min(float(w), x1 + m[2] * (x1 - x0)),
        min(float(h), y1 + m[3] * (y1 - y0)),
    )
    return rgb, gt.astype(bool), box


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
