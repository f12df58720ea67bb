"""SAM (and SAM-HQ) through transformers, and Grounding DINO for text -> boxes.

:class:`SamEngine` splits SAM into its two halves so the expensive one can be cached: ``embed``
runs the image encoder once per image; ``decode`` runs the prompt encoder and mask decoder
per prompt. Prompts are mapped into the encoder's frame here (longest side resized to the
model's input size, then padded), and low-resolution mask logits are mapped back to the
image's full resolution with OpenCV, as SAM's own post-processing does with torch.

:class:`TextDetector` is the Grounded-SAM recipe's first half: phrases -> boxes with scores,
each labelled with the phrase that found it.

torch and transformers are imported only when a model loads, never at import time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from services.seem.prompts import ObjectPrompt, nms_boxes, stroke_box

log = logging.getLogger("lvi.seem.sam")

# Grounding DINO's code hard-codes these BERT ids as phrase separators and specials.
_CLS, _SEP, _DOT, _QUESTION = 101, 102, 1012, 1029


def pad_to_aspect(image: Image.Image, max_ratio: float) -> Image.Image:
    """Pad (right or bottom, black) so that long side / short side <= ``max_ratio``.

    A panorama or a strip a few pixels high would otherwise shrink to features smaller than
    the models' strides. Padding at the far edges leaves every coordinate where it was.
    """
    w, h = image.size
    if max(w, h) <= max_ratio * min(w, h):
        return image
    short = int(np.ceil(max(w, h) / max_ratio))
    size = (w, short) if w > h else (short, h)
    canvas = Image.new("RGB", size)
    canvas.paste(image, (0, 0))
    return canvas


def torch_dtype(name: str) -> Any:
    import torch

    return {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[name]


@dataclass
class Embedding:
    """A cached image embedding plus the geometry needed to map prompts and masks."""

    features: Any  # torch.Tensor (1, C, h, w)
    intermediate: Any  # SAM-HQ: list of ViT features; None for SAM
    original: tuple[int, int]  # (H, W) of the image the encoder saw (padded if very thin)
    size: tuple[int, int]  # (H, W) of the image as sent
    resized: tuple[int, int]  # (H, W) after the longest side became the input size


@dataclass
class Candidates:
    """Low-resolution mask logits (K, m, m) and their predicted IoUs (K,)."""

    logits: np.ndarray
    scores: np.ndarray


class SamEngine:
    """A SAM or SAM-HQ checkpoint on one device, split into encoder and decoder calls."""

    def __init__(
        self, path: str, device: str, dtype: str, *, local_files_only: bool = False
    ) -> None:
        import torch
        from transformers import AutoConfig, AutoModel, AutoProcessor

        self.torch = torch
        self.device = torch.device(device)
        self.dtype = torch_dtype(dtype)
        config = AutoConfig.from_pretrained(path, local_files_only=local_files_only)
        if config.model_type not in ("sam", "sam_hq"):
            raise ValueError(f"{path} is a {config.model_type!r} model, not SAM or SAM-HQ")
        self.is_hq = config.model_type == "sam_hq"
        self.processor = AutoProcessor.from_pretrained(  # type: ignore[no-untyped-call]  # untyped in transformers
            path, local_files_only=local_files_only
        )
        self.model = (
            AutoModel.from_pretrained(path, dtype=self.dtype, local_files_only=local_files_only)
            .to(self.device)
            .eval()
        )
        ip = self.processor.image_processor
        self.input_size = int(ip.size["longest_edge"])
        self.pad = (int(ip.pad_size["height"]), int(ip.pad_size["width"]))
        self.mask_side = 4 * int(config.prompt_encoder_config.image_embedding_size)

    # -- geometry --------------------------------------------------------------------------
    def resized_shape(self, h: int, w: int) -> tuple[int, int]:
        """The (H, W) the image processor resizes to (its rounding, so prompts line up)."""
        s = self.input_size / max(h, w)
        return int(h * s + 0.5), int(w * s + 0.5)

    def _scale_xy(self, emb: Embedding, xy: np.ndarray) -> np.ndarray:
        (oh, ow), (nh, nw) = emb.original, emb.resized
        out = np.asarray(xy, np.float32).reshape(-1, 2).copy()
        out[:, 0] *= nw / ow
        out[:, 1] *= nh / oh
        return out

    def _mask_prompt(self, emb: Embedding, stroke: np.ndarray) -> np.ndarray:
        """A stroke as SAM's low-resolution mask input: positive logits on the stroke and 0
        ("don't know") elsewhere, so the stroke pulls the mask without fencing it in."""
        nh, nw = emb.resized
        small = cv2.resize(stroke.astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA)
        padded = np.zeros(self.pad, np.float32)
        padded[:nh, :nw] = small
        low = cv2.resize(padded, (self.mask_side, self.mask_side), interpolation=cv2.INTER_AREA)
        return (low > 0.05).astype(np.float32) * 8.0

    # -- the two halves --------------------------------------------------------------------
    def embed(self, image: Image.Image) -> Embedding:
        """Run the image encoder (the expensive half)."""
        torch = self.torch
        size = (image.height, image.width)
        image = pad_to_aspect(image, self.input_size / 16)  # keep >= 16 pixels across
        enc = self.processor.image_processor(image, return_tensors="pt")
        pixels = enc["pixel_values"].to(self.device, self.dtype)
        with torch.inference_mode():
            out = self.model.get_image_embeddings(pixels)
        features, inter = (out[0], list(out[1])) if self.is_hq else (out, None)
        h, w = image.height, image.width
        return Embedding(features, inter, (h, w), size, self.resized_shape(h, w))

    def _decode(self, emb: Embedding, multimask: bool, **prompts: Any) -> tuple[Any, Any]:
        torch = self.torch
        kwargs: dict[str, Any] = {"image_embeddings": emb.features}
        if self.is_hq:
            kwargs["intermediate_embeddings"] = emb.intermediate
        with torch.inference_mode():
            out = self.model(multimask_output=multimask, **kwargs, **prompts)
        return out.pred_masks.float(), out.iou_scores.float()

    def decode(
        self,
        emb: Embedding,
        obj: ObjectPrompt,
        *,
        multimask: bool,
        stroke_points: int,
        stroke_margin: float,
        stroke_mask_prompt: bool,
    ) -> Candidates:
        """Prompt encoder + mask decoder for one object (the cheap half)."""
        torch = self.torch
        from services.seem.prompts import sample_stroke_points

        points, labels, box = obj.points, obj.labels, obj.box
        mask_in = None
        if obj.stroke is not None:
            sp = sample_stroke_points(obj.stroke, stroke_points)
            points = np.concatenate([points, sp]).astype(np.float32)
            labels = np.concatenate([labels, np.ones(len(sp), np.int64)])
            if box is None:
                box = stroke_box(obj.stroke, stroke_margin)
            if stroke_mask_prompt:
                mask_in = self._mask_prompt(emb, obj.stroke)
        prompts: dict[str, Any] = {}
        if len(points):
            xy = self._scale_xy(emb, points)
            prompts["input_points"] = torch.from_numpy(xy)[None, None].to(self.device, self.dtype)
            prompts["input_labels"] = torch.from_numpy(labels.astype(np.int64))[None, None].to(
                self.device
            )
        if box is not None:
            xy = self._scale_xy(emb, np.asarray(box, np.float32).reshape(2, 2)).reshape(1, 1, 4)
            prompts["input_boxes"] = torch.from_numpy(xy).to(self.device, self.dtype)
        if mask_in is not None:
            prompts["input_masks"] = torch.from_numpy(mask_in)[None, None].to(
                self.device, self.dtype
            )
        # One click is ambiguous (a shirt or the person?): SAM's authors ask for three
        # candidates and the best-scored one; with more prompts one mask is better.
        ambiguous = box is None and mask_in is None and len(points) == 1
        masks, scores = self._decode(emb, multimask or ambiguous, **prompts)
        logits = masks[0, 0].cpu().numpy()
        iou = scores[0, 0].cpu().numpy()
        if not multimask and len(iou) > 1:
            best = int(np.argmax(iou))
            logits, iou = logits[best : best + 1], iou[best : best + 1]
        return Candidates(logits, iou)

    def decode_grid(self, emb: Embedding, n: int, batch: int = 64) -> Candidates:
        """Everything mode: an n x n grid of single-point prompts, three candidates each."""
        torch = self.torch
        h, w = emb.size
        g = (np.arange(n, dtype=np.float32) + 0.5) / n
        xy = np.stack(np.meshgrid(g * w, g * h), -1).reshape(-1, 2)
        all_logits, all_scores = [], []
        for i in range(0, len(xy), batch):
            chunk = self._scale_xy(emb, xy[i : i + batch])
            pts = torch.from_numpy(chunk)[None, :, None].to(self.device, self.dtype)
            lbl = torch.ones((1, len(chunk), 1), dtype=torch.int64, device=self.device)
            masks, scores = self._decode(emb, True, input_points=pts, input_labels=lbl)
            all_logits.append(masks[0].flatten(0, 1).cpu().numpy())
            all_scores.append(scores[0].flatten().cpu().numpy())
        return Candidates(np.concatenate(all_logits), np.concatenate(all_scores))

    def valid_low_res(self, emb: Embedding, logits: np.ndarray) -> np.ndarray:
        """Crop low-res logits (K, m, m) to the part that covers the image (not padding)."""
        nh, nw = emb.resized
        vh = max(1, round(self.mask_side * nh / self.pad[0]))
        vw = max(1, round(self.mask_side * nw / self.pad[1]))
        return logits[:, :vh, :vw]

    def upscale(self, emb: Embedding, logits: np.ndarray, threshold: float) -> np.ndarray:
        """Low-res logits (m, m) -> full-resolution bool mask (H, W)."""
        nh, nw = emb.resized
        oh, ow = emb.original
        ph, pw = self.pad
        big = cv2.resize(logits.astype(np.float32), (pw, ph), interpolation=cv2.INTER_LINEAR)
        big = np.ascontiguousarray(big[:nh, :nw])
        full = cv2.resize(big, (ow, oh), interpolation=cv2.INTER_LINEAR)
        h, w = emb.size
        return np.ascontiguousarray(full[:h, :w] > threshold)

    def warmup(self) -> None:
        img = Image.fromarray(np.full((48, 64, 3), 127, np.uint8))
        emb = self.embed(img)
        obj = ObjectPrompt(points=np.array([[32.0, 24.0]], np.float32), labels=np.ones(1, np.int64))
        self.decode(
            emb,
            obj,
            multimask=False,
            stroke_points=1,
            stroke_margin=0.0,
            stroke_mask_prompt=False,
        )


@dataclass
class Detection:
    box: tuple[float, float, float, float]
    phrase: str
    score: float


class TextDetector:
    """Grounding DINO: phrases -> boxes, each with the phrase that found it."""

    def __init__(
        self, path: str, device: str, dtype: str, *, local_files_only: bool = False
    ) -> None:
        import torch
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        self.torch = torch
        self.device = torch.device(device)
        self.dtype = torch_dtype(dtype)
        self.processor = AutoProcessor.from_pretrained(  # type: ignore[no-untyped-call]  # untyped in transformers
            path, local_files_only=local_files_only
        )
        self.model = (
            AutoModelForZeroShotObjectDetection.from_pretrained(
                path, dtype=self.dtype, local_files_only=local_files_only
            )
            .to(self.device)
            .eval()
        )
        self.max_text_len = int(getattr(self.model.config, "max_text_len", 256))
        size = getattr(self.processor.image_processor, "size", None)
        longest = getattr(size, "longest_edge", None) or (
            size.get("longest_edge") if isinstance(size, dict) else None
        )
        longest = longest or 1333
        # Keep >= 64 pixels across after the processor's resize: Swin's stride-32 features plus
        # one more stride-2 level must stay at least 2x2 (GroupNorm fails on 1x1).
        self.max_ratio = max(1.0, float(longest) / 64)

    def detect(
        self,
        image: Image.Image,
        phrases: list[str],
        *,
        box_threshold: float,
        text_threshold: float,
        nms_iou: float,
        max_instances: int,
    ) -> list[Detection]:
        """Every box above ``box_threshold`` whose best phrase scores above ``text_threshold``,
        de-duplicated per phrase, best first."""
        torch = self.torch
        # '?' is a separator to Grounding DINO too; only '.' may separate our phrases.
        phrases = [p.replace("?", " ").strip() or p for p in phrases]
        text = ". ".join(phrases) + "."
        w, h = image.width, image.height
        image = pad_to_aspect(image, self.max_ratio)
        inputs = self.processor(
            images=image,
            text=text,
            return_tensors="pt",
            truncation=True,
            max_length=self.max_text_len,
        )
        inputs = {
            k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device))
            for k, v in inputs.items()
        }
        with torch.inference_mode():
            out = self.model(**inputs)
        ids = inputs["input_ids"][0].tolist()
        # Which phrase each token belongs to (-1: special tokens and separators).
        token_phrase = np.full(out.logits.shape[-1], -1, np.int64)
        k = 0
        for t, tok in enumerate(ids[: len(token_phrase)]):
            if tok in (_DOT, _QUESTION):
                k += 1
            elif tok not in (_CLS, _SEP, 0) and k < len(phrases):
                token_phrase[t] = k
        probs = out.logits[0].float().sigmoid().cpu().numpy()  # (queries, max_text_len)
        valid = token_phrase >= 0
        if not valid.any():
            return []
        scores = probs[:, valid].max(1)
        per_phrase = np.stack(
            [
                probs[:, token_phrase == i].max(1)
                if (token_phrase == i).any()
                else np.zeros(len(probs))
                for i in range(len(phrases))
            ],
            1,
        )
        best = per_phrase.argmax(1)
        keep = (scores > box_threshold) & (per_phrase.max(1) > text_threshold)
        pw, ph = image.width, image.height  # boxes are relative to the (padded) input
        cxcywh = out.pred_boxes[0].float().cpu().numpy()
        boxes = np.stack(
            [
                cxcywh[:, 0] - cxcywh[:, 2] / 2,
                cxcywh[:, 1] - cxcywh[:, 3] / 2,
                cxcywh[:, 0] + cxcywh[:, 2] / 2,
                cxcywh[:, 1] + cxcywh[:, 3] / 2,
            ],
            1,
        ) * np.array([pw, ph, pw, ph], np.float32)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        keep &= (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        found: list[Detection] = []
        for i in range(len(phrases)):
            idx = np.flatnonzero(keep & (best == i))
            if len(idx) == 0:
                continue
            for j in nms_boxes(boxes[idx], scores[idx], nms_iou):
                q = idx[j]
                box = tuple(float(v) for v in boxes[q])
                found.append(Detection(box, phrases[i], float(scores[q])))  # type: ignore[arg-type]
        found.sort(key=lambda d: -d.score)
        return found[:max_instances]

    def warmup(self) -> None:
        img = Image.fromarray(np.full((48, 64, 3), 127, np.uint8))
        self.detect(
            img, ["object"], box_threshold=0.3, text_threshold=0.25, nms_iou=0.5, max_instances=1
        )
