"""A phone photo edited through the gateway: upload, segment (box), remove, at 12 MP.

Starts redis-server, the seem and inpaint workers and ``lvi gateway`` as real processes on
loopback (profile from --profile, default ``local``: GrabCut and OpenCV fill, the first run's
row, so the mask is a real object and the fill a real fill), then ``--runs`` times:

1. ``upload``: a noisy 4000x3000 quality-90 JPEG (about 6 MB: a phone photo) into a new
   session (stored as sent);
2. ``segment``: a box around the scene's red rectangle (GrabCut at the worker), the mask kept
   in the session;
3. ``mask``: the mask's PNG fetched back (what the UI shows);
4. ``remove``: the object filled (OpenCV Telea), the new version stored as a lossless PNG;
5. ``download``: the new version's image fetched back.

For each step: wall time at the client, the seconds the gateway itself spent waiting on the
worker (its ``lvi_gateway_worker_call_seconds`` histogram, so the rest is the gateway's own
work: Redis, base64, checks, store), bytes sent and bytes received. Medians over the runs.

    .venv/bin/python bench/fullsize_edit.py --runs 3 --out bench/results/fullsize_edit.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.imaging import jpeg_bytes, scene  # noqa: E402
from support.procs import ProcessFactory  # noqa: E402

KEY = "bench:bench-key"
AUTH = {"Authorization": "Bearer bench-key"}
STEPS = ("upload", "segment", "mask", "remove", "download")


def phone_photo(width: int, height: int) -> bytes:
    """The test scene with sensor-like noise (sigma 16) as a quality-90 JPEG (the same photo
    as tests/integration/test_large_photo.py)."""
    rgb = scene(width, height, seed=1).astype(np.int16)
    rgb += np.random.default_rng(3).normal(0, 16, rgb.shape).astype(np.int16)
    return bytes(jpeg_bytes(np.clip(rgb, 0, 255).astype(np.uint8)))


def worker_seconds(gw: httpx.Client) -> float:
    """Seconds the gateway has spent waiting on workers so far (its own histogram)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in gw.get("/metrics").text.splitlines()
        if line.startswith("lvi_gateway_worker_call_seconds_sum")
    )


def check(r: httpx.Response) -> httpx.Response:
    if r.status_code >= 300:
        raise RuntimeError(f"{r.request.method} {r.request.url} -> {r.status_code} {r.text[:300]}")
    return r


def timed(
    gw: httpx.Client, call: Callable[[], httpx.Response]
) -> tuple[httpx.Response, dict[str, float]]:
    """One step: its response, and wall/worker seconds with bytes sent and received."""
    before = worker_seconds(gw)
    t0 = time.perf_counter()
    r = check(call())
    wall = time.perf_counter() - t0
    worker = worker_seconds(gw) - before
    sent = len(r.request.content) if r.request.content else 0
    return r, {
        "wall_s": wall,
        "worker_s": worker,
        "gateway_own_s": wall - worker,
        "sent_bytes": sent,
        "received_bytes": len(r.content),
    }


def one_edit(gw: httpx.Client, photo: bytes, box: list[int]) -> dict[str, Any]:
    """Upload, segment, fetch the mask, remove, fetch the result: one row per step."""
    steps: dict[str, dict[str, float]] = {}
    sid = check(gw.post("/v1/sessions", json={"title": "bench"})).json()["id"]
    base = f"/v1/sessions/{sid}"
    r, steps["upload"] = timed(
        gw,
        lambda: gw.post(f"{base}/images", content=photo, headers={"Content-Type": "image/jpeg"}),
    )
    v1 = r.json()
    r, steps["segment"] = timed(gw, lambda: gw.post(f"{base}/segment", json={"boxes": [box]}))
    seg = r.json()
    _, steps["mask"] = timed(gw, lambda: gw.get(f"{base}/masks/{seg['mask_id']}"))
    r, steps["remove"] = timed(
        gw,
        lambda: gw.post(
            f"{base}/remove",
            json={"mask_id": seg["mask_id"], "dilate": 5},
            headers={"If-Match": f'"{v1["id"]}"'},
        ),
    )
    v2 = r.json()
    _, steps["download"] = timed(gw, lambda: gw.get(f"{base}/images/{v2['id']}"))
    check(gw.delete(base))  # keep Redis small across runs
    return {
        "steps": steps,
        "upload_stored_bytes": v1["bytes"],
        "upload_content_type": v1["content_type"],
        "mask_area": seg["area"],
        "result_stored_bytes": v2["bytes"],
        "result_content_type": v2["content_type"],
    }


def start_stack(procs: ProcessFactory) -> str:
    redis = procs.redis()
    workers = {n: procs.lvi("worker", n, wait=False) for n in ("seem", "inpaint")}
    for w in workers.values():
        w.wait_ready(timeout=300)
    env = {
        "GATEWAY_REDIS_URL": redis.url,
        "GATEWAY_API_KEYS": KEY,
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        "GATEWAY_SEEM_TIMEOUT_S": "600",
        "GATEWAY_INPAINT_TIMEOUT_S": "600",
        **{f"GATEWAY_{n.upper()}_URL": w.url for n, w in workers.items()},
    }
    return str(procs.lvi("gateway", env=env, ready_path="/healthz").url)


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {
        step: {
            key: statistics.median(r["steps"][step][key] for r in runs)
            for key in runs[0]["steps"][step]
        }
        for step in STEPS
    }


def size(n: float) -> str:
    if n >= 100_000:
        return f"{n / 1e6:.2f} MB"
    return f"{n / 1e3:.1f} kB" if n >= 1000 else f"{n:.0f} B"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--profile", default="local", help="LVI_PROFILE of the workers")
    ap.add_argument("--out", help="write the results (JSON) here")
    args = ap.parse_args()

    w, h = args.width, args.height
    photo = phone_photo(w, h)
    # The scene's red rectangle spans [w/4, w/2) x [h/4, h/2); the box gives it some margin.
    mx, my = max(4, w // 64), max(4, h // 64)
    box = [w // 4 - mx, h // 4 - my, w // 2 + mx, h // 2 + my]
    tmp = Path(tempfile.mkdtemp(prefix="lvi-bench-"))
    env = {
        **os.environ,
        "LVI_PROFILE": args.profile,
        "LVI_LOG_LEVEL": "warning",
        "LVI_LOG_JSON": "false",
        "HF_HUB_OFFLINE": "1",
        "LVI_CACHE_DIR": os.environ.get("LVI_CACHE_DIR", str(tmp / "cache")),
    }
    procs = ProcessFactory(env, tmp)
    try:
        url = start_stack(procs)
        with httpx.Client(base_url=url, headers=AUTH, timeout=900) as gw:
            runs = []
            for i in range(args.runs):
                runs.append(one_edit(gw, photo, box))
                print(f"run {i + 1}/{args.runs} done", file=sys.stderr)
    finally:
        procs.close()
        shutil.rmtree(tmp, ignore_errors=True)

    median = summarize(runs)
    result = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": {
            "arch": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_at_end": os.getloadavg()[0],
        },
        "profile": args.profile,
        "image": {"width": w, "height": h, "jpeg_bytes": len(photo), "box": box},
        "median": median,
        "runs": runs,
    }
    print(f"\n{w}x{h} JPEG {len(photo) / 1e6:.2f} MB, profile {args.profile}, {args.runs} runs")
    print("| step | wall | worker | gateway's own | sent | received |")
    print("|---|---|---|---|---|---|")
    for step in STEPS:
        m = median[step]
        print(
            f"| {step} | {m['wall_s']:.2f} s | {m['worker_s']:.2f} s | {m['gateway_own_s']:.2f} s"
            f" | {size(m['sent_bytes'])} | {size(m['received_bytes'])} |"
        )
    total = sum(median[s]["wall_s"] for s in STEPS)
    print(f"| total | {total:.2f} s | | | | |")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
