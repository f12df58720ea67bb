"""The seem worker's backend: SAM (+ Grounding DINO for text) or GrabCut behind one call.

SEEM itself cannot be installed as a package, so this worker offers SEEM's prompt modes with
packaged models: SAM / SAM-HQ for clicks, boxes and strokes, Grounding DINO to turn text into
boxes that SAM then segments (the Grounded-SAM recipe), and OpenCV GrabCut when no weights
are present. See docs/SEEM.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from prometheus_client import CollectorRegistry

from lvi.contracts.seem import SegmentMask, SegmentRequest, SegmentResponse
from lvi.images import encode_mask
from lvi.masks import mask_bbox, morph
from lvi.profiles import resolve_model
from lvi.settings import resolve_device, resolve_dtype
from lvi.worker import Job
from services.seem.cache import EmbeddingCache
from services.seem.grabcut import GrabCutSegmenter
from services.seem.prompts import (
    Box,
    ObjectPrompt,
    check_request,
    nms_masks,
    plan_objects,
    split_phrases,
)
from services.seem.settings import SeemSettings

log = logging.getLogger("lvi.seem")


@dataclass
class _Mask:
    """A candidate before encoding: full-resolution pixels, the model's score (``None``
    when no model scored it: GrabCut without a detector), label."""

    pixels: np.ndarray
    score: float | None
    label: str


def _rank(m: _Mask) -> float:
    # Unscored masks (GrabCut) keep their prompt order, after any scored one.
    return -m.score if m.score is not None else 1.0


class SeemBackend:
    """Answers :class:`SegmentRequest` with SAM (+ detector) when loaded, else GrabCut.

    The base loads nothing (GrabCut); :class:`SamBackend` and :class:`AutoBackend` load SAM.
    Built by name from :data:`services.seem.backends.BACKENDS`.
    """

    name = "grabcut"

    def __init__(self, settings: SeemSettings) -> None:
        self.settings = settings
        self.device = resolve_device(settings.device)
        self.dtype = resolve_dtype(settings.dtype, self.device)
        self.model_path: str | None = None
        self.detector_path: str | None = None
        self.sam: Any = None  # services.seem.sam.SamEngine
        self.detector: Any = None  # services.seem.sam.TextDetector
        self.grabcut = GrabCutSegmenter(
            settings.grabcut_iterations, settings.grabcut_max_side, settings.grabcut_context
        )
        self.cache: EmbeddingCache[Any] = EmbeddingCache(settings.cache_size)

    def bind_metrics(self, registry: CollectorRegistry) -> None:
        self.cache.bind_metrics(registry)

    # -- lifecycle -------------------------------------------------------------------------
    def load(self) -> None:
        log.info("seem backend: GrabCut (no weights)")
        # Text prompts need a detector: GrabCut segments each box it finds (the local
        # profile's tiny one). Only weights already here: GrabCut never starts a download.
        self._load_detector(required=False)

    def _load_detector(self, *, required: bool) -> None:
        """Grounding DINO from ``SEEM_DETECTOR`` (none set: text prompts are refused). Unless
        ``required``, only local weights are used and a missing one disables text prompts."""
        s = self.settings
        if not s.detector:
            return
        from services.seem.sam import TextDetector

        try:
            self.detector_path = resolve_model(s.detector, s.cache_dir, worker="seem")
            self.detector = TextDetector(
                self.detector_path, self.device, self.dtype, local_files_only=not required
            )
            log.info("loaded Grounding DINO from %s", self.detector_path)
        except Exception as e:
            if required:
                raise
            log.warning(
                "text prompts disabled: detector '%s' is not available (%s)",
                s.detector,
                type(e).__name__,
            )
            self.detector = None

    def _fall_back(self, why: str) -> None:
        log.warning("seem backend: %s; falling back to GrabCut (no text prompts)", why)
        self.name = "grabcut"
        self.sam = None

    def warmup(self) -> None:
        if self.sam is not None:
            self.sam.warmup()  # bypasses the cache, so its counters start at zero
        if self.detector is not None:
            self.detector.warmup()
        if self.name == "grabcut":
            rgb = np.full((64, 64, 3), 60, np.uint8)
            rgb[16:48, 16:48] = 200
            self.grabcut.segment(rgb, ObjectPrompt(box=(12.0, 12.0, 52.0, 52.0)))

    def info(self) -> dict[str, Any]:
        sam = self.sam is not None
        return {
            "backend": self.name,
            "model": (self.model_path or self.settings.model) if sam else "grabcut",
            "detector": (self.detector_path or self.settings.detector) if self.detector else None,
            "device": self.device if sam else "cpu",
            "dtype": self.dtype if sam else "uint8",
            "sam_hq": bool(sam and self.sam.is_hq),
            "prompts": ["points", "boxes", "stroke"]
            + (["text"] if self.detector is not None else [])
            + (["everything"] if sam else []),
            **self.cache.stats(),
        }

    # -- requests --------------------------------------------------------------------------
    def validate(self, req: SegmentRequest) -> None:
        """Cheap checks (headers only) before a request may wait for a slot."""
        check_request(
            req,
            text_supported=self.detector is not None,
            everything_supported=self.sam is not None,
        )

    def segment(self, req: SegmentRequest, job: Job) -> SegmentResponse:
        self.validate(req)
        w, h = req.image.width, req.image.height
        pil: list[Image.Image] = []  # decoded at most once, and only if needed

        def image() -> Image.Image:
            if not pil:
                pil.append(req.image.to_pil("RGB"))
            return pil[0]

        cache_hit = False
        if req.everything:
            masks, cache_hit = self._everything(req, image, job)
        else:
            boxes: list[Box] = [tuple(map(float, b)) for b in req.boxes]  # type: ignore[misc]
            box_labels = ["object"] * len(boxes)
            box_scores: list[float | None] = [None] * len(boxes)
            if req.text is not None:
                found = self.detector.detect(
                    image(),
                    split_phrases(req.text),
                    box_threshold=req.box_threshold,
                    text_threshold=req.text_threshold,
                    nms_iou=self.settings.text_nms_iou,
                    max_instances=self.settings.max_text_instances,
                )
                job.check()
                boxes += [d.box for d in found]
                box_labels += [d.phrase for d in found]
                box_scores += [d.score for d in found]
            stroke = req.stroke.to_bool() if req.stroke is not None else None
            labels = np.asarray(req.labels if req.labels is not None else [1] * len(req.points))
            objects = plan_objects(
                np.asarray(req.points, np.float32),
                labels,
                boxes,
                stroke,
                box_labels=box_labels,
                box_scores=box_scores,
            )
            if not objects:  # e.g. text that matched nothing: an answer, not an error
                masks = []
            elif self.sam is not None:
                masks, cache_hit = self._sam(req, objects, image, job)
            else:
                rgb = np.asarray(image())
                masks = []
                for obj in objects:
                    job.check()
                    # GrabCut has no confidence: the score is the detector's, if text found it.
                    masks.append(_Mask(self.grabcut.segment(rgb, obj), obj.score, obj.label))
        if req.merge and masks:
            union = np.logical_or.reduce([m.pixels for m in masks])
            labels_seen = list(dict.fromkeys(m.label for m in masks))
            scored = [m.score for m in masks if m.score is not None]
            masks = [_Mask(union, max(scored) if scored else None, ", ".join(labels_seen))]
        masks.sort(key=_rank)
        out: list[SegmentMask] = []
        for m in masks[: req.max_masks]:
            job.check()
            px = morph(m.pixels, req.erode, req.dilate)
            out.append(
                SegmentMask(
                    mask=encode_mask(px),
                    score=round(m.score, 6) if m.score is not None else None,
                    bbox=list(mask_bbox(px) or (0, 0, 0, 0)),  # the contract's empty box
                    area=int(np.count_nonzero(px)),
                    label=m.label,
                )
            )
        return SegmentResponse(masks=out, width=w, height=h, backend=self.name, cache_hit=cache_hit)

    def _embedding(self, req: SegmentRequest, image: Any) -> tuple[Any, bool]:
        key = (self.model_path, req.image.sha256)
        return self.cache.get_or_compute(key, lambda: self.sam.embed(image()))

    def _sam(
        self, req: SegmentRequest, objects: list[ObjectPrompt], image: Any, job: Job
    ) -> tuple[list[_Mask], bool]:
        emb, hit = self._embedding(req, image)
        job.check()
        s = self.settings
        picked: list[tuple[np.ndarray, float, str]] = []
        for obj in objects:
            cand = self.sam.decode(
                emb,
                obj,
                multimask=req.multimask,
                stroke_points=s.stroke_points,
                stroke_margin=s.stroke_box_margin,
                stroke_mask_prompt=s.stroke_mask_prompt,
            )
            for logits, iou in zip(cand.logits, cand.scores, strict=True):
                score = float(np.clip(iou, 0.0, 1.0))
                if obj.score is not None:
                    score *= obj.score
                picked.append((logits, score, obj.label))
            job.check()
        if not req.merge:
            # Only the masks that will be returned are worth upsampling to full resolution.
            picked.sort(key=lambda p: -p[1])
            picked = picked[: req.max_masks]
        masks = [
            _Mask(self.sam.upscale(emb, lg, s.mask_threshold), sc, lb) for lg, sc, lb in picked
        ]
        return masks, hit

    def _everything(self, req: SegmentRequest, image: Any, job: Job) -> tuple[list[_Mask], bool]:
        emb, hit = self._embedding(req, image)
        job.check()
        s = self.settings
        cand = self.sam.decode_grid(emb, s.everything_points_per_side)
        job.check()
        low = self.sam.valid_low_res(emb, cand.logits)
        t = s.mask_threshold
        # Stability: a good mask barely changes when the logit cut-off moves by +-1.
        hi = (low > t + 1.0).reshape(len(low), -1).sum(1)
        lo = (low > t - 1.0).reshape(len(low), -1).sum(1)
        stability = np.where(lo > 0, hi / np.maximum(lo, 1), 0.0)
        ok = np.flatnonzero(
            (cand.scores >= s.everything_min_score)
            & (stability >= s.everything_min_stability)
            & (hi > 0)
        )
        keep = [ok[i] for i in nms_masks(low[ok] > t, cand.scores[ok], s.everything_nms_iou)]
        keep = keep[: req.max_masks]
        masks = [
            _Mask(
                self.sam.upscale(emb, cand.logits[i], t), float(min(1.0, cand.scores[i])), "object"
            )
            for i in keep
        ]
        return masks, hit


class GrabCutBackend(SeemBackend):
    """OpenCV GrabCut: no weights, no everything mode; text prompts only through a detector
    already on this machine (``SEEM_DETECTOR``), whose boxes GrabCut then segments."""

    name = "grabcut"


class SamBackend(SeemBackend):
    """SAM (+ Grounding DINO for text) from ``SEEM_MODEL`` (and ``SEEM_DETECTOR``); a missing
    model fails the load."""

    name = "sam"
    # Use only weights already on this machine and fall back to GrabCut without them.
    fallback = False

    def load(self) -> None:
        from services.seem.sam import SamEngine

        auto = self.fallback
        s = self.settings
        if not s.model:
            if not auto:
                raise ValueError("SEEM_MODEL must name a SAM checkpoint when SEEM_BACKEND=sam")
            self._fall_back("no SEEM_MODEL is set")
            return
        try:
            self.model_path = resolve_model(s.model, s.cache_dir, worker="seem")
            # 'auto' uses weights already on this machine and never starts a download.
            self.sam = SamEngine(self.model_path, self.device, self.dtype, local_files_only=auto)
        except Exception as e:
            if not auto:
                raise
            self._fall_back(f"SAM '{s.model}' is not available ({type(e).__name__})")
            return
        log.info("loaded SAM from %s on %s (%s)", self.model_path, self.device, self.dtype)
        self._load_detector(required=not auto)


class AutoBackend(SamBackend):
    """SAM when its weights are already here (never downloads), GrabCut otherwise."""

    fallback = True
