"""Inpainting backends: LaMa (TorchScript) and OpenCV (Telea / Navier-Stokes).

Both work on a crop around the mask with context, never on a shrunken whole image, so a
small removal in a 4K photo costs what it costs at 512 pixels and the result stays at full
resolution. Only pixels inside the dilated mask are replaced; everything else is copied
from the input bit for bit.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import cv2
import numpy as np

from lvi.contracts.inpaint import (
    CompositeRequest,
    CompositeResponse,
    InpaintRequest,
    InpaintResponse,
)
from lvi.errors import BadRequest
from lvi.images import encode_image, encode_mask
from lvi.masks import disk, has_alpha, join_alpha, mask_bbox, split_alpha
from lvi.pixels import decode_bgr, decode_grey
from lvi.profiles import resolve_model
from lvi.settings import resolve_device
from lvi.worker import Job
from services.inpaint.settings import InpaintSettings

log = logging.getLogger("lvi.inpaint")


def context_region(
    bbox: tuple[int, int, int, int], size: tuple[int, int], context: float, min_context: int
) -> tuple[int, int, int, int]:
    """The bbox grown by ``context`` times its size (at least ``min_context`` px), clipped."""
    x0, y0, x1, y1 = bbox
    w, h = size
    mx = max(min_context, int((x1 - x0) * context))
    my = max(min_context, int((y1 - y0) * context))
    return max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)


def dilated_mask(
    grey: np.ndarray, radius: int
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """The bbox of ``grey >= 128`` grown by ``radius`` (elliptical kernel, as
    :func:`lvi.masks.dilate`) and the grown mask inside that bbox; None when it is empty.

    Only a window around the mask is thresholded again and dilated: dilation cannot reach
    further than ``radius`` from a set pixel, so the window's result is the full image's.
    """
    _, binary = cv2.threshold(grey, 127, 1, cv2.THRESH_BINARY)
    x, y, w, h = cv2.boundingRect(binary)
    if w == 0 or h == 0:
        return None
    rows, cols = grey.shape
    wx0, wy0 = max(0, x - radius), max(0, y - radius)
    wx1, wy1 = min(cols, x + w + radius), min(rows, y + h + radius)
    window = binary[wy0:wy1, wx0:wx1]
    if radius > 0:
        window = cv2.dilate(window, disk(radius))
    x, y, w, h = cv2.boundingRect(window)
    bbox = (wx0 + x, wy0 + y, wx0 + x + w, wy0 + y + h)
    return bbox, window[y : y + h, x : x + w] > 0


class LamaModel:
    """A LaMa TorchScript module (``big-lama.pt`` convention) on one device."""

    def __init__(self, path: str, device: str) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        # torch.jit.load is untyped in torch's stubs.
        self.module = torch.jit.load(path, map_location=self.device).eval()  # type: ignore[no-untyped-call]
        # TorchScript modules are not guaranteed thread-safe; concurrency > 1 shares one copy.
        self.lock = threading.Lock()

    def __call__(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        torch = self.torch
        h, w = mask.shape
        ph, pw = (-h) % 8, (-w) % 8  # LaMa's down/up-sampling needs multiples of 8
        img = np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
        msk = np.pad(mask, ((0, ph), (0, pw)), mode="constant")
        t_img = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(self.device)
        t_msk = torch.from_numpy(msk.astype(np.float32))[None, None].to(self.device)
        with self.lock, torch.inference_mode():
            out = self.module(t_img, t_msk)
        out = out[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().byte().cpu().numpy()
        return np.ascontiguousarray(out[:h, :w])


class InpaintBackend:
    """Fills masked regions and composites. The base fills with OpenCV only (Telea or
    Navier-Stokes); :class:`LamaBackend` adds LaMa. Built by name from
    :data:`services.inpaint.backends.BACKENDS`."""

    name = "opencv"

    def __init__(self, settings: InpaintSettings) -> None:
        self.settings = settings
        self.device = resolve_device(settings.device)
        self.model_path: str | None = None
        self.lama: LamaModel | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def load(self) -> None:
        """Nothing to load: OpenCV needs no weights."""

    def warmup(self) -> None:
        rgb = np.full((64, 64, 3), 127, np.uint8)
        mask = np.zeros((64, 64), bool)
        mask[24:40, 24:40] = True
        self._fill_bgr(rgb, mask, "auto")

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model_path or self.settings.model or "opencv",
            "device": self.device if self.name == "lama" else "cpu",
            "dtype": "float32" if self.name == "lama" else "uint8",
            "methods": ["lama", "telea", "ns"] if self.lama else ["telea", "ns"],
        }

    # -- inference -------------------------------------------------------------------------
    def _require_lama(self) -> LamaModel:
        if self.lama is None:
            raise BadRequest(
                "method 'lama' is not available: this worker runs the OpenCV backend.",
                param="method",
                code="method_unavailable",
            )
        return self.lama

    def _fill_bgr(self, bgr: np.ndarray, mask: np.ndarray, method: str) -> tuple[np.ndarray, str]:
        """Fill ``mask`` in ``bgr`` (both already cropped); return BGR pixels and the method.

        ``cv2.inpaint`` fills each channel on its own, so BGR and RGB give the same pixels."""
        if method == "auto":
            method = "lama" if self.lama is not None else "telea"
        if method == "lama":
            lama = self._require_lama()
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            h, w = mask.shape
            side = self.settings.lama_max_side
            if max(h, w) > side:
                # Shrink only the crop the model sees; the paste-back stays full resolution.
                s = side / max(h, w)
                small = (max(8, round(w * s)), max(8, round(h * s)))
                out = lama(
                    cv2.resize(rgb, small, interpolation=cv2.INTER_AREA),
                    cv2.resize(mask.astype(np.uint8), small, interpolation=cv2.INTER_NEAREST) > 0,
                )
                out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
            else:
                out = lama(rgb, mask)
            return cv2.cvtColor(out, cv2.COLOR_RGB2BGR), "lama"
        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        return cv2.inpaint(bgr, mask.astype(np.uint8) * 255, self.settings.radius, flag), method

    def inpaint(self, req: InpaintRequest, job: Job) -> InpaintResponse:
        found = dilated_mask(decode_grey(req.mask), req.dilate)
        if found is None:
            # Nothing to fill: hand back the very bytes we got (bit-identical, no re-encode).
            return InpaintResponse(
                image=req.image,
                width=req.image.width,
                height=req.image.height,
                method="none",
                mask_area=0,
            )
        bbox, inside = found
        if req.method == "lama":
            self._require_lama()  # refuse before decoding anything
        # One decode, in OpenCV's channel order; the fill and the paste-back touch the crop
        # only, in place, and the encoder takes the same array (no full-image copy or colour
        # conversion: see bench/inpaint_floor.py).
        pixels = decode_bgr(req.image, has_alpha(req.image))
        job.check()
        x0, y0, x1, y1 = context_region(
            bbox,
            (pixels.shape[1], pixels.shape[0]),
            self.settings.context,
            self.settings.min_context,
        )
        crop_mask = np.zeros((y1 - y0, x1 - x0), bool)
        bx0, by0, bx1, by1 = bbox
        crop_mask[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0] = inside
        region = pixels[y0:y1, x0:x1, :3]
        filled, method = self._fill_bgr(np.ascontiguousarray(region), crop_mask, req.method)
        job.check()
        region[crop_mask] = filled[crop_mask]
        encoded = encode_image(pixels, bgr=True)
        return InpaintResponse(
            image=encoded,
            width=encoded.width,
            height=encoded.height,
            method=method,
            mask_area=int(np.count_nonzero(inside)),
            region=[x0, y0, x1, y1],
        )

    def composite(self, req: CompositeRequest, job: Job) -> CompositeResponse:
        target, t_alpha = split_alpha(req.image)
        source = req.source.to_array("RGB")
        mask = req.mask.to_bool()
        h, w = mask.shape
        # Shift the mask and the source together; whatever leaves the frame is dropped.
        shifted = np.zeros_like(mask)
        moved = np.zeros_like(source)
        sx0, sx1 = max(0, -req.dx), min(w, w - req.dx)
        sy0, sy1 = max(0, -req.dy), min(h, h - req.dy)
        if sx0 < sx1 and sy0 < sy1:
            shifted[sy0 + req.dy : sy1 + req.dy, sx0 + req.dx : sx1 + req.dx] = mask[
                sy0:sy1, sx0:sx1
            ]
            moved[sy0 + req.dy : sy1 + req.dy, sx0 + req.dx : sx1 + req.dx] = source[
                sy0:sy1, sx0:sx1
            ]
        job.check()
        bbox = mask_bbox(shifted)
        out = target.copy()
        if bbox is not None:
            if req.feather > 0:
                # Feather inward only, so nothing outside the object's new mask changes.
                dist = cv2.distanceTransform(shifted.astype(np.uint8), cv2.DIST_L2, 3)
                alpha = np.clip(dist / req.feather, 0.0, 1.0)[..., None]
                blend = moved.astype(np.float32) * alpha + target.astype(np.float32) * (1 - alpha)
                out[shifted] = np.round(blend[shifted]).astype(np.uint8)
            else:
                out[shifted] = moved[shifted]
        encoded = encode_image(join_alpha(out, t_alpha))
        return CompositeResponse(
            image=encoded,
            width=encoded.width,
            height=encoded.height,
            bbox=list(bbox) if bbox else None,
            mask=encode_mask(shifted) if bbox else None,
        )


class OpenCVBackend(InpaintBackend):
    """OpenCV inpainting (Telea / Navier-Stokes): no weights, CPU only."""

    name = "opencv"


class LamaBackend(InpaintBackend):
    """LaMa (a TorchScript file, ``INPAINT_MODEL``) for ``auto``/``lama``; OpenCV stays
    available as ``telea``/``ns``."""

    name = "lama"

    def load(self) -> None:
        if not self.settings.model:
            raise ValueError("INPAINT_MODEL must name a LaMa TorchScript file")
        self.model_path = resolve_model(
            self.settings.model, self.settings.cache_dir, worker="inpaint"
        )
        self.lama = LamaModel(self.model_path, self.device)
        log.info("loaded LaMa from %s on %s", self.model_path, self.device)
