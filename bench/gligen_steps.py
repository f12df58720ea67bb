"""GLIGEN worker: seconds per denoising step of the tiny pipeline, through HTTP and in-process.

Starts a real worker (`lvi worker gligen`, tiny profile) on a loopback port and, for the same
request (prompt + 2 boxes, fixed seed), times:

- in-process: ``GligenBackend.generate()`` on the already-parsed request, in this process;
- HTTP JSON: ``POST /v1/generate`` (JSON reply);
- HTTP SSE: the same with ``Accept: text/event-stream``, read to the ``result`` event.

Each at a low and a high step count; seconds per step is the slope between the two timings
(best of N by default, ``--stat median`` for medians), so fixed costs (text encoding, VAE
decode, PNG, HTTP) fall out and are reported apart as the intercept. One run compares all
three, interleaved, since this 2-core machine is noisy.

    .venv/bin/python bench/gligen_steps.py [--runs 7] [--lo 2] [--hi 12] [--size 64]
        [--mode generate|inpaint] [--scheduler dpm++] [--device auto] [--threads 1]
        [--stat min|median] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from support.imaging import png_bytes, scene
from support.procs import free_port

from lvi.contracts.gligen import GenerateRequest
from lvi.worker import Job
from services.gligen.backend import GligenBackend
from services.gligen.settings import GligenSettings


def payload(args: argparse.Namespace, steps: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": "a cat and a hat",
        "phrases": ["a cat", "a hat"],
        "boxes": [[0.1, 0.3, 0.6, 0.9], [0.5, 0.05, 0.9, 0.4]],
        "steps": steps,
        "seed": 1,
        "guidance_scale": 7.5,
    }
    if args.mode == "inpaint":
        img = scene(args.size * 3 // 2, args.size, seed=1)  # non-square: exercises the crop
        body["image"] = base64.b64encode(png_bytes(img, compress_level=1)).decode()
    else:
        body |= {"width": args.size, "height": args.size}
    return body


STAT = {"min": min, "median": statistics.median}


def sse_call(client: httpx.Client, url: str, body: bytes) -> None:
    headers = {"content-type": "application/json", "accept": "text/event-stream"}
    with client.stream("POST", url + "/v1/generate", content=body, headers=headers) as r:
        assert r.status_code == 200, r.read()
        last = ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                last = line[6:].strip()
        assert last == "result", last


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--lo", type=int, default=2)
    ap.add_argument("--hi", type=int, default=12)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--mode", choices=["generate", "inpaint"], default="generate")
    ap.add_argument("--scheduler", default="dpm++")
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads in both processes (1: stable numbers on a shared 2-core box)",
    )
    ap.add_argument(
        "--stat",
        choices=sorted(STAT),
        default="min",
        help="min (best of N: robust when other jobs share the CPU) or median",
    )
    ap.add_argument("--out", help="also write the numbers as JSON here")
    args = ap.parse_args()

    cache = os.environ.get("LVI_CACHE_DIR") or tempfile.mkdtemp(prefix="lvi-bench-")
    env = {
        **os.environ,
        "LVI_CACHE_DIR": cache,
        "GLIGEN_PROFILE": "tiny",
        "GLIGEN_SCHEDULER": args.scheduler,
        "GLIGEN_DEVICE": args.device,
        "GLIGEN_MAX_SIDE": str(max(1024, args.size)),
        "LVI_LOG_LEVEL": "warning",
        "OMP_NUM_THREADS": str(args.threads),
    }
    import torch

    torch.set_num_threads(args.threads)
    os.environ.update({k: env[k] for k in ("LVI_CACHE_DIR",)})
    settings = GligenSettings(
        profile="tiny",
        scheduler=args.scheduler,
        device=args.device,
        max_side=max(1024, args.size),
        cache_dir=Path(cache),
    )
    backend = GligenBackend(settings)
    backend.load()  # builds the tiny models into the cache first, so the worker finds them
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher", "worker", "gligen", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    results: dict[str, dict[int, float]] = {"in-process": {}, "HTTP JSON": {}, "HTTP SSE": {}}
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/v2/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("worker did not become ready")
        with httpx.Client(timeout=600) as client:
            for steps in (args.lo, args.hi):
                raw = payload(args, steps)
                body = json.dumps(raw).encode()
                req = GenerateRequest.model_validate(raw)

                def in_process(req: GenerateRequest = req) -> None:
                    backend.generate(req, Job())

                def http_json(body: bytes = body) -> None:
                    r = client.post(
                        url + "/v1/generate",
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    assert r.status_code == 200, r.text
                    r.json()

                def http_sse(body: bytes = body) -> None:
                    sse_call(client, url, body)

                calls = {"in-process": in_process, "HTTP JSON": http_json, "HTTP SSE": http_sse}
                for fn in calls.values():
                    fn()  # warm
                times: dict[str, list[float]] = {k: [] for k in calls}
                for _ in range(args.runs):  # interleaved, so drift hits all three alike
                    for name, fn in calls.items():
                        t0 = time.perf_counter()
                        fn()
                        times[name].append(time.perf_counter() - t0)
                for name in calls:
                    results[name][steps] = STAT[args.stat](times[name])
    finally:
        proc.terminate()
        proc.wait(10)

    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, device: {backend.device} ({backend.dtype_name}), "
        f"torch threads: {args.threads}"
    )
    print(
        f"mode: {args.mode}, size: {args.size}, scheduler: {args.scheduler}, "
        f"steps: {args.lo} and {args.hi}, runs: {args.runs} ({args.stat} of the runs)\n"
    )
    print(
        f"| path | {args.stat} at {args.lo} steps | {args.stat} at {args.hi} steps "
        "| seconds per step "
        "| fixed cost (intercept) | per-step ratio to in-process |"
    )
    print("|---|---|---|---|---|---|")
    base = None
    table = {}
    for name, by_steps in results.items():
        lo, hi = by_steps[args.lo], by_steps[args.hi]
        per_step = (hi - lo) / (args.hi - args.lo)
        fixed = lo - per_step * args.lo
        base = base or per_step
        table[name] = {"lo": lo, "hi": hi, "per_step": per_step, "fixed": fixed}
        print(
            f"| {name} | {lo * 1000:.1f} ms | {hi * 1000:.1f} ms | {per_step * 1000:.2f} ms "
            f"| {fixed * 1000:.1f} ms | {per_step / base:.2f}x |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": table}, indent=2))


if __name__ == "__main__":
    main()
