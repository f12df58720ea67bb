"""GrabCut: classical interactive segmentation that needs no weights (OpenCV).

Seeds come from the same prompts SAM takes: a box marks everything outside it as background
and everything inside as probable foreground; stroke pixels and positive clicks are certain
foreground, negative clicks certain background. Without a box, the neighbourhood of the
stroke or clicks is probable foreground, farther pixels probable background, and the border
of a generous crop certain background.

GrabCut's cost grows with the pixels it sees, so it runs on the prompt's region plus some
context, shrunk to ``max_side``; the mask is upsampled back into the full-resolution frame.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from services.seem.prompts import ObjectPrompt, stroke_box

log = logging.getLogger("lvi.seem.grabcut")

Region = tuple[int, int, int, int]

BOX_BAND = 0.1
"""Fraction of a box's width/height along its edges that starts as probable background."""


class GrabCutSegmenter:
    """Segments one object of an RGB image from its :class:`ObjectPrompt`."""

    def __init__(self, iterations: int = 5, max_side: int = 320, context: float = 0.5) -> None:
        self.iterations = iterations
        self.max_side = max_side
        self.context = context

    def _region(self, obj: ObjectPrompt, w: int, h: int) -> tuple[Region, float]:
        """The crop GrabCut sees, and (no box) the radius of probable foreground around seeds.

        With a box: the box plus ``context``. Without one the object's size is unknown: seeds
        are grown by ``r`` (a sixth of the shorter image side) into probable foreground, and
        the crop reaches ``3r`` beyond the seeds so that its border is probably background.
        """
        if obj.box is not None:
            x0, y0, x1, y1 = obj.box
            mx = max(16.0, (x1 - x0) * self.context)
            my = max(16.0, (y1 - y0) * self.context)
            r = 0.0
        else:
            xs: list[float] = []
            ys: list[float] = []
            if obj.stroke is not None:
                sx0, sy0, sx1, sy1 = stroke_box(obj.stroke, 0.0)
                xs += [sx0, sx1]
                ys += [sy0, sy1]
            pos = obj.positives
            if len(pos):
                xs += [float(pos[:, 0].min()), float(pos[:, 0].max())]
                ys += [float(pos[:, 1].min()), float(pos[:, 1].max())]
            x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
            r = max(8.0, min(w, h) / 6)
            mx = my = 3 * r
        region = (
            max(0, int(np.floor(x0 - mx))),
            max(0, int(np.floor(y0 - my))),
            min(w, int(np.ceil(x1 + mx))),
            min(h, int(np.ceil(y1 + my))),
        )
        return region, r

    def segment(self, rgb: np.ndarray, obj: ObjectPrompt) -> np.ndarray:
        """A full-resolution bool mask of the object (empty when nothing says foreground)."""
        h, w = rgb.shape[:2]
        out = np.zeros((h, w), bool)
        if not obj.has_positive_seed():
            return out
        (cx0, cy0, cx1, cy1), r = self._region(obj, w, h)
        cw, ch = cx1 - cx0, cy1 - cy0
        if cw < 2 or ch < 2:
            return out
        scale = min(1.0, self.max_side / max(cw, ch))
        sw, sh = max(2, round(cw * scale)), max(2, round(ch * scale))
        crop = np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1])
        if scale < 1.0:
            crop = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA)
        sx, sy = sw / cw, sh / ch

        def to_work(x: float, y: float) -> tuple[int, int]:
            return int(np.clip((x - cx0) * sx, 0, sw - 1)), int(np.clip((y - cy0) * sy, 0, sh - 1))

        hard_fg = np.zeros((sh, sw), np.uint8)
        if obj.stroke is not None:
            part: np.ndarray = obj.stroke[cy0:cy1, cx0:cx1].astype(np.uint8)
            if scale < 1.0:
                part = cv2.resize(part, (sw, sh), interpolation=cv2.INTER_NEAREST)
            hard_fg |= part
        radius = max(3, round(0.015 * max(sw, sh)))
        for (px, py), lab in zip(obj.points, obj.labels, strict=True):
            if lab == 1:
                cv2.circle(hard_fg, to_work(px, py), radius, 1, -1)
        if obj.box is not None:
            # Outside the box is certain background, inside probable foreground, except a band
            # along the box's edges: a user's box is loose, so its rim is probably background.
            # Without the band the foreground colour model starts out mostly background and
            # GrabCut can settle on the ring around the object instead of the object.
            init = np.full((sh, sw), cv2.GC_BGD, np.uint8)
            bx0, by0 = to_work(obj.box[0], obj.box[1])
            bx1, by1 = to_work(obj.box[2], obj.box[3])
            init[by0 : by1 + 1, bx0 : bx1 + 1] = cv2.GC_PR_BGD
            mx, my = int(BOX_BAND * (bx1 - bx0)), int(BOX_BAND * (by1 - by0))
            init[by0 + my : by1 + 1 - my, bx0 + mx : bx1 + 1 - mx] = cv2.GC_PR_FGD
        else:
            # Near the seeds probably foreground, farther probably background, and the crop's
            # border (3r away from any seed) background.
            init = np.full((sh, sw), cv2.GC_PR_BGD, np.uint8)
            k = 2 * max(1, round(r * min(sx, sy))) + 1
            near = cv2.dilate(hard_fg, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
            init[near > 0] = cv2.GC_PR_FGD
            init[[0, -1], :] = cv2.GC_BGD
            init[:, [0, -1]] = cv2.GC_BGD
        init[hard_fg > 0] = cv2.GC_FGD
        for (px, py), lab in zip(obj.points, obj.labels, strict=True):
            if lab == 0:
                cv2.circle(init, to_work(px, py), radius, int(cv2.GC_BGD), -1)
        if not np.isin(init, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
            # The box is the whole frame: GrabCut needs background samples, so let the frame's
            # border be probably background (objects rarely fill a photo edge to edge).
            ring = np.zeros((sh, sw), bool)
            ring[[0, -1], :] = True
            ring[:, [0, -1]] = True
            init[ring & (init != cv2.GC_FGD)] = cv2.GC_PR_BGD
        work = self._grabcut(crop, init)
        if work is None:  # too few pixels for its colour models: the seeds are the answer
            work = np.isin(init, (cv2.GC_FGD, cv2.GC_PR_FGD))
        work = self._keep_seeded_components(work, hard_fg > 0)
        if scale < 1.0:
            up = cv2.resize(work.astype(np.float32), (cw, ch), interpolation=cv2.INTER_LINEAR)
            work = up >= 0.5
        out[cy0:cy1, cx0:cx1] = work
        return out

    def _grabcut(self, crop: np.ndarray, init: np.ndarray) -> np.ndarray | None:
        mask = init.copy()
        bgd = np.zeros((1, 65), np.float64)
        fgd = np.zeros((1, 65), np.float64)
        bgr = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
        # GrabCut seeds its colour models with k-means on OpenCV's per-thread RNG: a fixed
        # seed makes the same request give the same mask, whatever ran before on the thread.
        cv2.setRNGSeed(0)
        try:
            # OpenCV's stubs want a rect; with GC_INIT_WITH_MASK it is unused and None is valid.
            cv2.grabCut(bgr, mask, None, bgd, fgd, self.iterations, cv2.GC_INIT_WITH_MASK)  # type: ignore[call-overload]
        except cv2.error as e:
            log.info("grabcut fell back to its seeds: %s", str(e).splitlines()[-1:])
            return None
        return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD))

    @staticmethod
    def _keep_seeded_components(mask: np.ndarray, hard_fg: np.ndarray) -> np.ndarray:
        """Drop specks: keep the components that hold a certain-foreground seed, else the
        largest one (a box prompt has no certain seed)."""
        n, cc, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        if n <= 2:
            return mask
        seeded = np.unique(cc[hard_fg & mask])
        seeded = seeded[seeded > 0]
        if len(seeded):
            return np.isin(cc, seeded)
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        return np.asarray(cc == largest)
