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
from lvi.masks import dilate, join_alpha, mask_bbox, split_alpha
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
        self._fill(rgb, mask, "auto")

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

    def _fill(self, rgb: np.ndarray, mask: np.ndarray, method: str) -> tuple[np.ndarray, str]:
        """Fill ``mask`` in ``rgb`` (both already cropped); return pixels and the method used."""
        if method == "auto":
            method = "lama" if self.lama is not None else "telea"
        if method == "lama":
            lama = self._require_lama()
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
                return cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC), "lama"
            return lama(rgb, mask), "lama"
        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        out = cv2.inpaint(bgr, mask.astype(np.uint8) * 255, self.settings.radius, flag)
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB), method

    def inpaint(self, req: InpaintRequest, job: Job) -> InpaintResponse:
        mask = req.mask.to_bool()
        mask = dilate(mask, req.dilate)
        bbox = mask_bbox(mask)
        if bbox is None:
            # Nothing to fill: hand back the very bytes we got (bit-identical, no re-encode).
            return InpaintResponse(
                image=req.image,
                width=req.image.width,
                height=req.image.height,
                method="none",
                mask_area=0,
            )
        if req.method == "lama":
            self._require_lama()  # refuse before decoding anything
        rgb, alpha = split_alpha(req.image)
        job.check()
        x0, y0, x1, y1 = context_region(
            bbox, (rgb.shape[1], rgb.shape[0]), self.settings.context, self.settings.min_context
        )
        crop_mask = mask[y0:y1, x0:x1]
        filled, method = self._fill(np.ascontiguousarray(rgb[y0:y1, x0:x1]), crop_mask, req.method)
        job.check()
        out = rgb.copy()
        region = out[y0:y1, x0:x1]
        region[crop_mask] = filled[crop_mask]
        encoded = encode_image(join_alpha(out, alpha))
        return InpaintResponse(
            image=encoded,
            width=encoded.width,
            height=encoded.height,
            method=method,
            mask_area=int(mask.sum()),
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
