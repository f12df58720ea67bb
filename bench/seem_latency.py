"""Seem worker latency: full forward vs cached decoder (SAM), and GrabCut at 512 and 1024.

In-process, through the worker's own backend (``SeemBackend.segment``: decode the request's
PNG, run the model, upsample, encode the mask PNGs), so the figures are what a request costs
inside the worker, without HTTP. Also the bare engine calls (``SamEngine.embed`` and
``SamEngine.decode``), to show where the time goes.

- SAM ("tiny" by default: the random-weight tiny SAM, or any checkpoint with ``--model``):
  a click on a fresh image (cache miss: image encoder + decoder) against a click on the same
  image again (cache hit: prompt encoder + mask decoder only), and a text prompt (Grounding
  DINO + SAM per instance) when a detector is configured;
- GrabCut: one loose box on a synthetic scene (tests/support/seem_scenes.py) at 512x512 and
  1024x1024, at the default working size (320), at 512 and at full resolution, with its IoU against
  the scene's ground truth.

Figures are medians of ``--runs`` runs in one process; this 2-core machine is noisy, so
compare ratios within one run.

``--random-full`` builds random-weight checkpoints of the real sizes (SAM ViT-H and Grounding
DINO Swin-T + BERT-base, configurations from ``bench/gpu_bench.py``) and loads them through the
worker's own loading code, which is how the GPU path (CUDA, float16) is exercised without
downloading weights; ``--smoke`` shrinks those configurations to run on a CPU in seconds.
Before timing, every prompt kind (click, clicks, boxes, stroke, text, multimask, merge,
everything) runs once and its mask sizes are checked.

    .venv/bin/python bench/seem_latency.py [--runs 20] [--model tiny:sam] [--out FILE.json]
    python bench/seem_latency.py --random-full --device cuda --skip-grabcut   # on a GPU host
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
from support.imaging import b64, png_bytes, scene  # noqa: E402
from support.seem_scenes import iou, textured_scene  # noqa: E402

from lvi.contracts.seem import SegmentRequest  # noqa: E402
from lvi.worker import Job  # noqa: E402
from services.seem.backend import SeemBackend  # noqa: E402
from services.seem.backends import build_backend  # noqa: E402
from services.seem.grabcut import GrabCutSegmenter  # noqa: E402
from services.seem.prompts import ObjectPrompt  # noqa: E402
from services.seem.settings import SeemSettings  # noqa: E402


def median_ms(fn: Callable[[], Any], runs: int, warm: int = 2) -> float:
    for _ in range(warm):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def build_random_full(root: Path, smoke: bool) -> tuple[str, str]:
    """Random-weight SAM ViT-H and Grounding DINO (Swin-T) folders, as ``from_pretrained``
    expects them (``--smoke``: the same code with tiny configurations)."""
    import torch
    from gpu_bench import GDINO_SMOKE, GDINO_TINY, SAM_SMOKE, SAM_VIT_H
    from transformers import (
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoProcessor,
        SamConfig,
        SamModel,
        SamProcessor,
    )
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil,
    )
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    from services.seem.tiny import _grounding_vocab

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    sam_cfg = SAM_SMOKE if smoke else SAM_VIT_H
    side = sam_cfg["vision_config"]["image_size"]
    low = side // sam_cfg["vision_config"]["patch_size"] * 4
    torch.manual_seed(0)
    with torch.device(device):
        sam = SamModel(SamConfig(**sam_cfg)).to(dtype).eval()
    sam.save_pretrained(root / "sam")
    SamProcessor(
        image_processor=SamImageProcessorPil(
            size={"longest_edge": side},
            pad_size={"height": side, "width": side},
            mask_size={"longest_edge": low},
            mask_pad_size={"height": low, "width": low},
        )
    ).save_pretrained(root / "sam")
    del sam
    gd_cfg = GDINO_SMOKE if smoke else GDINO_TINY
    with torch.device(device):
        gd = GroundingDinoForObjectDetection(GroundingDinoConfig(**gd_cfg)).to(dtype).eval()
    gd.save_pretrained(root / "gdino")
    size = {"shortest_edge": 128, "longest_edge": 192} if smoke else None
    GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessorPil(**({"size": size} if size else {})),
        tokenizer=BertTokenizer(
            vocab=_grounding_vocab(), do_lower_case=True, model_max_length=gd_cfg["max_text_len"]
        ),
    ).save_pretrained(root / "gdino")
    del gd
    if device == "cuda":
        torch.cuda.empty_cache()
    return str(root / "sam"), str(root / "gdino")


def check_prompt_kinds(backend: SeemBackend, side: int) -> list[str]:
    """Every prompt kind once; masks must come back at the image's size. Returns the kinds."""
    img = b64(png_bytes(scene(side + 37, side, seed=11)))  # not square: exercises the crop-back
    stroke = np.zeros((side, side + 37), np.uint8)
    stroke[side // 2 : side // 2 + 4, side // 4 : side // 2] = 255
    c = [side * 0.4, side * 0.5]
    kinds: dict[str, dict[str, Any]] = {
        "click": {"points": [c]},
        "clicks+/-": {"points": [c, [5, 5]], "labels": [1, 0]},
        "two boxes": {"boxes": [[0, 0, side / 2, side / 2], [side / 2, 10, side, side]]},
        "stroke": {"stroke": b64(png_bytes(stroke))},
        "box+stroke+click": {
            "boxes": [[0, 0, side, side]],
            "stroke": b64(png_bytes(stroke)),
            "points": [c],
        },
        "multimask": {"points": [c], "multimask": True},
        "everything": {"everything": True, "max_masks": 8},
    }
    if backend.detector is not None:
        kinds["text"] = {"text": "a cat. dog", "box_threshold": 0.0, "text_threshold": 0.0}
        kinds["text+merge"] = {"text": "cat", "box_threshold": 0.0, "merge": True, "dilate": 3}
    for name, kw in kinds.items():
        out = backend.segment(SegmentRequest.model_validate({"image": img, **kw}), Job())
        sizes = {m.mask.size for m in out.masks}
        assert sizes <= {(side + 37, side)}, (name, sizes)
        if name not in ("everything",) and not name.startswith("text"):
            assert out.masks, name
        print(f"  ok: {name} -> {len(out.masks)} masks", file=sys.stderr)
    return list(kinds)


def bench_sam(args: argparse.Namespace) -> dict[str, Any]:
    settings = SeemSettings(
        profile="tiny",
        backend="sam",
        model=args.model,
        detector=args.detector,
        device=args.device,
        cache_size=4,
    )
    backend = build_backend(settings)
    t0 = time.perf_counter()
    backend.load()
    backend.warmup()
    load_s = time.perf_counter() - t0
    engine = backend.sam
    side = args.sam_side
    kinds = check_prompt_kinds(backend, side)
    sync: Callable[[], None] = lambda: None  # noqa: E731
    if backend.device.startswith("cuda"):
        import torch

        sync = torch.cuda.synchronize
    images = [b64(png_bytes(scene(side, side, seed=i))) for i in range(args.runs + 4)]
    fresh = iter(images)
    click = {"points": [[side * 0.3, side * 0.4]]}

    def miss() -> None:  # a new image every time: encoder + decoder
        req = SegmentRequest.model_validate({"image": next(fresh), **click})
        assert backend.segment(req, Job()).cache_hit is False

    same = SegmentRequest.model_validate({"image": images[-1], **click})

    def hit() -> None:  # the same image: decoder only (the first call fills the cache)
        backend.segment(same, Job())

    from PIL import Image

    pil = Image.fromarray(scene(side, side, seed=0))
    emb = engine.embed(pil)
    obj = ObjectPrompt(points=np.array(click["points"], np.float32), labels=np.ones(1, np.int64))

    def decode() -> None:
        engine.decode(
            emb, obj, multimask=False, stroke_points=8, stroke_margin=0.1, stroke_mask_prompt=True
        )

    def embed() -> None:
        engine.embed(pil)
        sync()  # the encoder's output stays on the device; wait for it

    out: dict[str, Any] = {
        "model": backend.info()["model"],
        "device": backend.device,
        "dtype": backend.dtype,
        "load_and_warmup_s": load_s,
        "prompt_kinds_checked": kinds,
        "image": f"{side}x{side}",
        "click_cache_miss_ms": median_ms(miss, args.runs, warm=0),
        "click_cache_hit_ms": median_ms(hit, args.runs),  # warm-up calls fill the cache
        "engine_embed_ms": median_ms(embed, args.runs),
        "engine_decode_ms": median_ms(decode, args.runs),
    }
    if backend.detector is not None:
        text = SegmentRequest.model_validate(
            {"image": images[-1], "text": "a cat. dog", "box_threshold": 0.0}
        )
        out["text_ms"] = median_ms(lambda: backend.segment(text, Job()), args.runs)
        out["text_masks"] = len(backend.segment(text, Job()).masks)
    return out


def bench_grabcut(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for side in (512, 1024):
        rgb, gt, box = textured_scene(2, side, side)
        for max_side in (320, 512, 4096):
            seg = GrabCutSegmenter(iterations=5, max_side=max_side, context=0.5)
            mask = seg.segment(rgb, ObjectPrompt(box=box))
            obj = ObjectPrompt(box=box)
            ms = median_ms(lambda s=seg, o=obj, x=rgb: s.segment(x, o), args.gc_runs, 1)
            rows.append(
                {
                    "image": f"{side}x{side}",
                    "work_side": "full" if max_side >= side * 2 else str(max_side),
                    "ms": ms,
                    "iou": iou(mask, gt),
                }
            )
    # The whole request through the backend (PNG decode + GrabCut + mask PNG encode) at 1024.
    backend = build_backend(SeemSettings(backend="grabcut"))
    backend.load()
    rgb, _, box = textured_scene(2, 1024, 1024)
    req = SegmentRequest.model_validate({"image": b64(png_bytes(rgb)), "boxes": [list(box)]})
    rows.append(
        {
            "image": "1024x1024",
            "work_side": "320 (whole request)",
            "ms": median_ms(lambda: backend.segment(req, Job()), args.gc_runs, 1),
            "iou": None,
        }
    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--gc-runs", type=int, default=5)
    ap.add_argument("--model", default="tiny:sam")
    ap.add_argument("--detector", default="tiny:grounding-dino")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sam-side", type=int, default=512)
    ap.add_argument("--random-full", action="store_true", help="random SAM-H + DINO-T weights")
    ap.add_argument("--smoke", action="store_true", help="with --random-full: tiny configs")
    ap.add_argument("--skip-grabcut", action="store_true")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    if "LVI_CACHE_DIR" not in os.environ:
        os.environ["LVI_CACHE_DIR"] = tempfile.mkdtemp(prefix="lvi-bench-")
    if args.random_full:
        t0 = time.perf_counter()
        root = Path(tempfile.mkdtemp(prefix="seem-random-"))
        args.model, args.detector = build_random_full(root, args.smoke)
        print(f"built random checkpoints in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    sam = bench_sam(args)
    gc = [] if args.skip_grabcut else bench_grabcut(args)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "python bench/seem_latency.py " + " ".join(sys.argv[1:]),
        "sam": sam,
        "grabcut": gc,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))

    print(f"\n{result['machine']}\n")
    print(f"SAM ({sam['model']}, {sam['device']} {sam['dtype']}, {sam['image']} image, one click)")
    print(f"prompt kinds checked: {', '.join(sam['prompt_kinds_checked'])}\n")
    print("| call | median |")
    print("|---|---|")
    rows = [
        ("request, cache miss (encoder + decoder)", sam["click_cache_miss_ms"]),
        ("request, cache hit (decoder only)", sam["click_cache_hit_ms"]),
        ("engine.embed (image encoder)", sam["engine_embed_ms"]),
        ("engine.decode (prompt encoder + mask decoder)", sam["engine_decode_ms"]),
    ]
    if "text_ms" in sam:
        rows.append((f"request, text ({sam['text_masks']} instances)", sam["text_ms"]))
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} ms |")
    ratio = sam["click_cache_miss_ms"] / sam["click_cache_hit_ms"]
    print(f"\ncache miss / cache hit: {ratio:.2f}x\n")
    if not gc:
        return
    print("GrabCut (one loose box, 5 iterations)\n")
    print("| image | GrabCut works at | median | IoU |")
    print("|---|---|---|---|")
    for r in gc:
        iou_s = f"{r['iou']:.3f}" if r["iou"] is not None else "-"
        print(f"| {r['image']} | {r['work_side']} | {r['ms']:.1f} ms | {iou_s} |")


if __name__ == "__main__":
    main()
