"""GLIGEN backend: diffusers' ``StableDiffusionGLIGENPipeline`` for both checkpoints.

Generation runs the pipeline at the requested size. Inpainting never shrinks the whole
image: it cuts a square around the boxes (with context) out of the full-size input, runs the
model at its native size on that square, scales the result back to the square's size and
pastes it only inside the boxes (intersected with the caller's mask), feathered inward. Every
pixel outside that area is copied from the input bit for bit, whatever the input's size.

The pipeline is not re-entrant (its scheduler holds per-run state, ``enable_fuser`` flips
module flags, and inpainting draws noise from torch's global generator), so runs are
serialised by one lock; admission control queues requests in front of it. Seeds make runs
reproducible: the explicit generator and torch's global generator are both seeded inside a
forked RNG state, so nothing else in the process disturbs them and they disturb nothing.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from lvi.contracts.gligen import GenerateRequest, GenerateResponse, Progress, Started
from lvi.errors import BadRequest, Unprocessable
from lvi.images import EncodedImage, encode_image
from lvi.masks import join_alpha, mask_bbox, split_alpha
from lvi.profiles import missing_model, resolve_model
from lvi.settings import resolve_device, resolve_dtype
from lvi.worker import Cancelled, Job
from services.gligen.settings import GligenSettings

log = logging.getLogger("lvi.gligen")

DISABLED = ("", "none", "off")

# name -> diffusers scheduler class. Built from the checkpoint's own scheduler config, so the
# noise schedule (betas, offsets) stays the one the model was trained with.
SCHEDULERS = {
    "dpm++": "DPMSolverMultistepScheduler",
    "pndm": "PNDMScheduler",
    "ddim": "DDIMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "unipc": "UniPCMultistepScheduler",
}


# -- pixel geometry (pure functions, no torch) ------------------------------------------------


def boxes_to_pixels(
    boxes: list[list[float]], size: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """Normalised boxes -> pixel boxes ``[x0, y0, x1, y1)``; every non-empty box keeps >= 1 px."""
    w, h = size
    out = []
    for x0, y0, x1, y1 in boxes:
        px0, py0 = min(w - 1, math.floor(x0 * w)), min(h - 1, math.floor(y0 * h))
        px1, py1 = max(px0 + 1, math.ceil(x1 * w)), max(py0 + 1, math.ceil(y1 * h))
        out.append((px0, py0, min(w, px1), min(h, py1)))
    return out


def boxes_mask(pixel_boxes: list[tuple[int, int, int, int]], size: tuple[int, int]) -> np.ndarray:
    """HxW bool mask of the union of pixel boxes."""
    w, h = size
    mask = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in pixel_boxes:
        mask[y0:y1, x0:x1] = True
    return mask


@dataclass(frozen=True)
class Crop:
    """A square ``side`` x ``side`` window at ``(x0, y0)`` in image pixels; may reach outside."""

    x0: int
    y0: int
    side: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x0, self.y0, self.x0 + self.side, self.y0 + self.side


def plan_crop(
    union: tuple[int, int, int, int],
    size: tuple[int, int],
    *,
    context: float,
    min_side: int,
) -> Crop:
    """The square the model sees: the boxes' union grown by ``context`` on each side, at least
    ``min_side`` (so small edits run at 1:1 scale), at most the image's longer side, centred
    on the union and shifted to stay inside the image where the image allows."""
    w, h = size
    ux0, uy0, ux1, uy1 = union
    longest = max(ux1 - ux0, uy1 - uy0)
    side = round(longest * (1 + 2 * context))
    side = max(side, min(min_side, max(w, h)), longest)
    side = min(side, max(w, h))

    def place(lo: int, hi: int, full: int) -> int:
        if side >= full:  # the square is wider than the image here: centre it, pad both sides
            return (full - side) // 2
        start = round((lo + hi) / 2 - side / 2)
        return min(max(start, 0), full - side)

    return Crop(place(ux0, ux1, w), place(uy0, uy1, h), side)


def crop_boxes(
    boxes: list[list[float]], size: tuple[int, int], crop: Crop, cells: int
) -> list[list[float]]:
    """Boxes normalised to the image -> normalised to the crop, grown outward to whole cells of
    the ``cells`` x ``cells`` latent grid. The pipeline truncates box edges to latent cells
    when it draws its inpainting mask; without this the last partial cell of a box would keep
    the old content while our paste-back covers it."""
    w, h = size
    out = []
    for x0, y0, x1, y1 in boxes:
        rel = [
            (x0 * w - crop.x0) / crop.side,
            (y0 * h - crop.y0) / crop.side,
            (x1 * w - crop.x0) / crop.side,
            (y1 * h - crop.y0) / crop.side,
        ]
        lo = [math.floor(v * cells + 1e-9) for v in rel[:2]]
        hi = [math.ceil(v * cells - 1e-9) for v in rel[2:]]
        # + 1e-6 so that the pipeline's int(edge * cells) lands on the intended cell.
        out.append([min(1.0, max(0.0, (c + 1e-6) / cells)) for c in (*lo, *hi)])
    return out


def cut_square(rgb: np.ndarray, crop: Crop) -> np.ndarray:
    """The crop's pixels; parts outside the image are filled by reflection (context only)."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = crop.box
    inner = rgb[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    top, left = max(0, -y0), max(0, -x0)
    bottom, right = max(0, y1 - h), max(0, x1 - w)
    if not (top or left or bottom or right):
        return np.ascontiguousarray(inner)
    # Reflection needs at least 2 pixels along an axis; a 1-pixel strip is replicated.
    border = cv2.BORDER_REFLECT_101 if min(inner.shape[:2]) > 1 else cv2.BORDER_REPLICATE
    return cv2.copyMakeBorder(inner, top, bottom, left, right, border)


def resize(rgb: np.ndarray, side: int) -> np.ndarray:
    """Square resize: area averaging when shrinking, Lanczos when enlarging."""
    if rgb.shape[0] == side and rgb.shape[1] == side:
        return rgb
    interp = cv2.INTER_AREA if rgb.shape[0] > side else cv2.INTER_LANCZOS4
    return cv2.resize(rgb, (side, side), interpolation=interp)


def feather_alpha(mask: np.ndarray, feather: int) -> np.ndarray:
    """Blend weights inside ``mask``: 1 deep inside, ramping down towards its edge; 0 outside.

    The ramp lies entirely inside the mask, so nothing outside it can change. The image border
    does not count as an edge (there is nothing beyond it to blend with).
    """
    if feather <= 0:
        return mask.astype(np.float32)
    padded = np.pad(mask.astype(np.uint8), 1, mode="edge")
    dist: np.ndarray = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    weights: np.ndarray = np.clip(dist / float(feather), 0.0, 1.0).astype(np.float32) * mask
    return weights


def paste(
    base: np.ndarray, patch: np.ndarray, at: tuple[int, int], alpha: np.ndarray
) -> np.ndarray:
    """Blend ``patch`` (placed with its top-left at ``at``, may overhang) into a copy of
    ``base`` where ``alpha`` (full image size) is > 0; other pixels are the very same bytes."""
    h, w = base.shape[:2]
    x0, y0 = at
    full = np.zeros_like(base)
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    dx1 = min(w, x0 + patch.shape[1])
    dy1 = min(h, y0 + patch.shape[0])
    full[dy0:dy1, dx0:dx1] = patch[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0]
    out = base.copy()
    inside = alpha > 0
    a = alpha[inside][:, None]
    blended = full[inside].astype(np.float32) * a + base[inside].astype(np.float32) * (1 - a)
    out[inside] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return out


# -- the backend -------------------------------------------------------------------------------


class GligenMetrics:
    """Counters that show what the denoising loop really did (e.g. that a disconnect stopped
    a run early): steps executed and runs by outcome, per mode."""

    def __init__(self, registry: Any | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter

        registry = registry if registry is not None else CollectorRegistry()
        self.steps = Counter(
            "lvi_gligen_denoising_steps",
            "Denoising steps executed.",
            ["mode"],
            registry=registry,
        )
        self.runs = Counter(
            "lvi_gligen_runs",
            "Pipeline runs by outcome (completed, cancelled, failed).",
            ["mode", "outcome"],
            registry=registry,
        )


@dataclass
class _Run:
    """Everything one pipeline call needs, prepared (and validated) before the slot is used."""

    mode: str
    prompt: str
    phrases: list[str]
    boxes: list[list[float]]
    beta: float
    steps: int
    seed: int
    width: int
    height: int
    guidance_scale: float
    negative_prompt: str | None
    image: np.ndarray | None = None  # native-size square (inpainting)


class GligenBackend:
    """Both GLIGEN pipelines, loaded once and kept; one run at a time per process.

    The ``diffusers`` entry of :data:`services.gligen.backends.BACKENDS`.
    """

    name = "diffusers"

    def __init__(self, settings: GligenSettings) -> None:
        self.settings = settings
        self.device = resolve_device(settings.device)
        self.dtype_name = resolve_dtype(settings.dtype, self.device)
        self.pipes: dict[str, Any] = {}
        self.paths: dict[str, str] = {}
        self.native: dict[str, int] = {}
        self.metrics = GligenMetrics()
        self._lock = threading.Lock()

    def bind_metrics(self, registry: Any) -> None:
        """Register our counters in the app's registry (called by the worker runtime)."""
        self.metrics = GligenMetrics(registry)

    # -- lifecycle -------------------------------------------------------------------------
    def load(self) -> None:
        refs = {"generate": self.settings.model, "inpaint": self.settings.inpaint_model}
        for mode, ref in refs.items():
            if ref is None or ref.strip().lower() in DISABLED:
                continue
            self.pipes[mode] = self._load_pipeline(mode, ref)
            log.info("loaded GLIGEN %s model %s on %s", mode, self.paths[mode], self.device)
        # The deprecated pipeline reads vae.sample_size the deprecated way on every inpainting
        # call; the warning says nothing an operator can act on.
        warnings.filterwarnings(
            "ignore", message="Accessing config attribute `sample_size`", category=FutureWarning
        )
        if not self.pipes:
            raise ValueError("GLIGEN_MODEL and GLIGEN_INPAINT_MODEL are both off; nothing to serve")

    def _load_pipeline(self, mode: str, ref: str) -> Any:
        """Load one checkpoint, swap in the configured scheduler, move it to the device."""
        import torch
        from diffusers import StableDiffusionGLIGENPipeline

        path = resolve_model(ref, self.settings.cache_dir, worker="gligen")
        try:
            pipe = StableDiffusionGLIGENPipeline.from_pretrained(  # type: ignore[no-untyped-call]  # untyped in diffusers
                path,
                dtype=getattr(torch, self.dtype_name),  # diffusers 0.42 renamed torch_dtype
                # The demo ran without one; loading CLIP-L just to black out images is a
                # deployment decision, not a default.
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        except (OSError, ValueError) as e:
            raise missing_model(ref, "gligen", e) from e
        pipe.scheduler = self._scheduler(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        pipe = pipe.to(self.device)
        expected = 9 if mode == "inpaint" else 4  # inpainting adds masked latents + mask
        if pipe.unet.config.in_channels != expected:
            setting = "GLIGEN_INPAINT_MODEL" if mode == "inpaint" else "GLIGEN_MODEL"
            raise ValueError(
                f"{setting}={ref} has a {pipe.unet.config.in_channels}-channel UNet; the "
                f"{mode} checkpoint needs {expected} channels (did you swap the two models?)"
            )
        self.paths[mode] = path
        if mode == "inpaint":
            # The pipeline resizes an inpainting image to the VAE's square sample size.
            self.native[mode] = int(pipe.vae.config.sample_size)
        else:
            self.native[mode] = int(pipe.unet.config.sample_size) * pipe.vae_scale_factor
        return pipe

    def _scheduler(self, config: Any) -> Any:
        import diffusers

        cls = getattr(diffusers, SCHEDULERS[self.settings.scheduler])
        return cls.from_config(config)

    def warmup(self) -> None:
        """One short run per loaded model, so the first request pays no lazy initialisation."""
        job = Job()
        steps = self.settings.warmup_steps
        if "generate" in self.pipes:
            req = GenerateRequest(
                prompt="a photo", phrases=["a cat"], boxes=[[0.25, 0.25, 0.75, 0.75]], steps=steps
            )
            self.generate(req, job)
        if "inpaint" in self.pipes:
            side = self.native["inpaint"]
            grey = encode_image(np.full((side, side, 3), 127, np.uint8))
            req = GenerateRequest(
                image=grey, phrases=["a cat"], boxes=[[0.25, 0.25, 0.75, 0.75]], steps=steps
            )
            self.generate(req, job)

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.paths.get("generate") or self.settings.model,
            "inpaint_model": self.paths.get("inpaint") or self.settings.inpaint_model,
            "modes": sorted(self.pipes),
            "native_size": dict(self.native),
            "device": self.device,
            "dtype": self.dtype_name,
            "scheduler": self.settings.scheduler,
            "default_steps": self.settings.default_steps,
            "max_side": self.settings.max_side,
        }

    # -- requests --------------------------------------------------------------------------
    def generate(self, req: GenerateRequest, job: Job) -> GenerateResponse:
        """Serve one request: validate and decode, announce the run, denoise, assemble."""
        run = self.prepare(req)
        if run.mode == "inpaint":
            assert req.image is not None
            base, alpha = split_alpha(req.image)  # raises BadRequest on a corrupt image
            paste_mask, crop = self._plan_inpaint(req, base)
            native = self.native["inpaint"]
            run.image = resize(cut_square(base, crop), native)
            cells = native // self.pipes["inpaint"].vae_scale_factor
            run.boxes = crop_boxes(req.boxes, (base.shape[1], base.shape[0]), crop, cells)
        job.emit(
            Started(
                mode=req.mode, seed=run.seed, total=run.steps, width=run.width, height=run.height
            )
        )
        job.check()
        pixels = self._run(run, job)
        job.check()
        if run.mode == "generate":
            encoded = encode_image(pixels)
            return self._response(encoded, run, region=None, crop=None)
        patch = resize(pixels, crop.side)
        weights = feather_alpha(paste_mask, self.settings.feather)
        out = paste(base, patch, (crop.x0, crop.y0), weights)
        encoded = encode_image(join_alpha(out, alpha))
        region = mask_bbox(paste_mask)
        return self._response(encoded, run, region=region, crop=crop.box)

    def _response(
        self,
        encoded: EncodedImage,
        run: _Run,
        *,
        region: tuple[int, int, int, int] | None,
        crop: tuple[int, int, int, int] | None,
    ) -> GenerateResponse:
        return GenerateResponse(
            image=encoded,
            width=encoded.width,
            height=encoded.height,
            seed=run.seed,
            steps=run.steps,
            mode="inpaint" if run.mode == "inpaint" else "generate",
            scheduled_sampling_beta=run.beta,
            region=list(region) if region else None,
            crop=list(crop) if crop else None,
        )

    def prepare(self, req: GenerateRequest) -> _Run:
        """Check what the contract cannot (worker limits, loaded modes, token lengths)."""
        mode = req.mode
        pipe = self.pipes.get(mode)
        if pipe is None:
            raise BadRequest(
                f"This worker does not serve {'grounded inpainting' if mode == 'inpaint' else 'generation'}"
                f" (GLIGEN_{'INPAINT_' if mode == 'inpaint' else ''}MODEL is off).",
                code="mode_unavailable",
                param="image" if mode == "inpaint" else None,
            )
        native = self.native[mode]
        if mode == "inpaint":
            assert req.image is not None
            width, height = req.image.width, req.image.height
        else:
            width, height = req.width or native, req.height or native
            for name, value in (("width", width), ("height", height)):
                if value > self.settings.max_side:
                    raise Unprocessable(
                        f"{name} {value} is over this worker's limit of {self.settings.max_side}.",
                        code="size_too_large",
                        param=name,
                    )
        tokenizer = pipe.tokenizer
        limit = int(tokenizer.model_max_length)
        for i, phrase in enumerate(req.phrases):
            # The pipeline does not truncate phrases; past the text encoder's positions it fails.
            n = len(tokenizer(phrase, verbose=False)["input_ids"])
            if n > limit:
                raise Unprocessable(
                    f"phrases[{i}] is {n} tokens long; the limit is {limit}.",
                    code="phrase_too_long",
                    param=f"phrases.{i}",
                )
        prompt = req.prompt.strip()
        if req.append_phrases and req.phrases:
            prompt = "; ".join(p for p in [prompt, *req.phrases] if p)
        beta = req.scheduled_sampling_beta
        if beta is None:
            beta = 1.0 if mode == "inpaint" else 0.3
        return _Run(
            mode=mode,
            prompt=prompt,
            phrases=list(req.phrases),
            boxes=[list(b) for b in req.boxes],
            beta=beta,
            steps=req.steps or self.settings.default_steps,
            seed=req.seed if req.seed is not None else secrets.randbelow(2**32),
            width=width,
            height=height,
            guidance_scale=req.guidance_scale,
            negative_prompt=req.negative_prompt or None,
        )

    def _plan_inpaint(self, req: GenerateRequest, base: np.ndarray) -> tuple[np.ndarray, Crop]:
        """The pixels that may change (boxes, within the mask) and the square the model sees."""
        size = (base.shape[1], base.shape[0])
        pixel_boxes = boxes_to_pixels(req.boxes, size)
        editable = boxes_mask(pixel_boxes, size)
        if req.mask is not None:
            editable &= req.mask.to_bool()
            if not editable.any():
                raise BadRequest(
                    "The mask does not overlap any box, so nothing would change.",
                    code="empty_edit_region",
                    param="mask",
                )
        union = mask_bbox(boxes_mask(pixel_boxes, size))
        assert union is not None  # at least one box, each at least one pixel
        native = self.native["inpaint"]
        crop = plan_crop(
            union,
            size,
            context=self.settings.context,
            min_side=self.settings.min_crop or native,
        )
        return editable, crop

    def _run(self, run: _Run, job: Job) -> np.ndarray:
        """Denoise under the lock; report and check cancellation after every step."""
        import torch
        from PIL import Image

        pipe = self.pipes[run.mode]
        metrics = self.metrics
        done = {"n": 0}

        def on_step(_i: int, _t: Any, _latents: Any) -> None:
            done["n"] += 1
            metrics.steps.labels(mode=run.mode).inc()
            job.emit(Progress(step=done["n"], total=run.steps))
            job.check()  # raising here is how a run stops within one step

        phrases, boxes, beta = run.phrases, run.boxes, run.beta
        if not phrases:
            # The pipeline cannot take zero boxes; one empty dummy with the grounding switched
            # off from the first step (beta 0) is plain text-to-image.
            phrases, boxes, beta = [""], [[0.0, 0.0, 0.0, 0.0]], 0.0
        kwargs: dict[str, Any] = {}
        if run.image is not None:
            kwargs["gligen_inpaint_image"] = Image.fromarray(run.image)
            side = self.native["inpaint"]
            height = width = side
        else:
            height, width = run.height, run.width
        outcome = "failed"
        with self._lock:
            devices = (
                [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
            )
            t0 = time.perf_counter()
            try:
                job.check()  # it may have waited for the lock past its deadline
                with torch.random.fork_rng(devices=devices):
                    # Inpainting draws noise from the global generator (randn_like and the VAE's
                    # latent sample), so it is seeded too; the forked state keeps that local.
                    torch.manual_seed(run.seed)
                    generator = torch.Generator(device="cpu").manual_seed(run.seed)
                    result = pipe(
                        prompt=run.prompt,
                        negative_prompt=run.negative_prompt,
                        gligen_phrases=phrases,
                        gligen_boxes=boxes,
                        gligen_scheduled_sampling_beta=beta,
                        height=height,
                        width=width,
                        num_inference_steps=run.steps,
                        guidance_scale=run.guidance_scale,
                        generator=generator,
                        output_type="np",
                        callback=on_step,
                        callback_steps=1,
                        **kwargs,
                    )
                outcome = "completed"
            except Cancelled:
                outcome = "cancelled"
                raise
            finally:
                metrics.runs.labels(mode=run.mode, outcome=outcome).inc()
                log.info(
                    "gligen %s run %s after %d/%d steps in %.3fs",
                    run.mode,
                    outcome,
                    done["n"],
                    run.steps,
                    time.perf_counter() - t0,
                )
        images = result.images[0]
        return np.ascontiguousarray(np.clip(np.round(images * 255), 0, 255).astype(np.uint8))
