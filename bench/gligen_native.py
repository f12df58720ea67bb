"""Tiny GLIGEN: how long one 512x512 image takes in-process, at the tiny model's layout.

Builds the tiny generation pipeline with the current builder (``lvi/tiny.py``) into a temp
cache, loads it through the worker's backend (``GligenBackend``, CPU, fp32) and times
``generate()`` for a prompt + 2 boxes at ``--size`` for ``--lo`` and ``--hi`` steps. Seconds
per step is the slope between the two (the fixed cost: text encoding, VAE decode, PNG). The
result, labelled ``--label``, is merged into ``--out`` so a before/after pair sits in one file.

    .venv/bin/python bench/gligen_native.py --size 512 --lo 2 --hi 25 --threads 2 \
        --label after --out bench/results/gligen_native_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lvi.contracts.gligen import GenerateRequest
from lvi.worker import Job
from services.gligen.backend import GligenBackend
from services.gligen.settings import GligenSettings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--lo", type=int, default=2)
    ap.add_argument("--hi", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scheduler", default="dpm++")
    ap.add_argument("--label", default="run")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    cache = Path(tempfile.mkdtemp(prefix="lvi-bench-"))
    settings = GligenSettings.model_validate(
        {
            "profile": "tiny",
            "scheduler": args.scheduler,
            "device": "cpu",
            "max_side": max(1024, args.size),
            "cache_dir": cache,
        }
    )
    backend = GligenBackend(settings)
    t0 = time.perf_counter()
    backend.load()
    build_s = time.perf_counter() - t0
    pipe = backend.pipes["generate"]
    params = sum(p.numel() for p in pipe.unet.parameters())
    vae_params = sum(p.numel() for p in pipe.vae.parameters())
    times: dict[int, float] = {}
    for steps in (args.lo, args.hi):
        req = GenerateRequest.model_validate(
            {
                "prompt": "a cat and a hat",
                "phrases": ["a cat", "a hat"],
                "boxes": [[0.1, 0.3, 0.6, 0.9], [0.5, 0.05, 0.9, 0.4]],
                "steps": steps,
                "seed": 1,
                "width": args.size,
                "height": args.size,
            }
        )
        t0 = time.perf_counter()
        out = backend.generate(req, Job())
        times[steps] = time.perf_counter() - t0
        assert (out.width, out.height) == (args.size, args.size)
    per_step = (times[args.hi] - times[args.lo]) / (args.hi - args.lo)
    row: dict[str, Any] = {
        "size": args.size,
        "native_size": backend.native.get("generate"),
        "vae_scale_factor": pipe.vae_scale_factor,
        "unet_params": params,
        "vae_params": vae_params,
        "threads": args.threads,
        "scheduler": args.scheduler,
        "build_and_load_s": round(build_s, 2),
        "seconds": {str(k): round(v, 3) for k, v in times.items()},
        "seconds_per_step": round(per_step, 4),
        "fixed_s": round(times[args.lo] - per_step * args.lo, 3),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps({args.label: row}, indent=1))
    if args.out:
        data = json.loads(args.out.read_text()) if args.out.exists() else {}
        data[args.label] = row
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
