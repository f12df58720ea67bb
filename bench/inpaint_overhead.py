"""Inpaint worker: HTTP overhead against an in-process call, at 512x512 and 2048x2048.

Starts a real worker (`lvi worker inpaint`, OpenCV Telea backend) on a loopback port, sends
the same request N times over HTTP, and calls the same backend method in-process on the
same (already parsed) request. Prints a markdown table; figures are medians and ratios from
one run, since this 2-core machine is noisy.

    .venv/bin/python bench/inpaint_overhead.py [--runs 15] [--method telea]
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
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.imaging import png_bytes, rect_mask, scene
from support.procs import free_port

from lvi.contracts.inpaint import InpaintRequest
from lvi.worker import Job
from services.inpaint.backends import build_backend
from services.inpaint.settings import InpaintSettings


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--method", default="telea")
    args = ap.parse_args()

    port = free_port()
    env = {**os.environ, "INPAINT_PROFILE": "cpu", "LVI_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher", "worker", "inpaint", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(url + "/v2/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        backend = build_backend(InpaintSettings(profile="cpu"))
        backend.load()
        rows = []
        with httpx.Client(timeout=120) as client:
            for size in (512, 2048):
                img = scene(size, size, seed=size)
                s = size // 8
                mask = rect_mask(size, size, (3 * s, 3 * s, 4 * s, 4 * s))  # ~1.6 % of the image
                payload = {
                    "image": base64.b64encode(png_bytes(img, compress_level=1)).decode(),
                    "mask": base64.b64encode(png_bytes(mask)).decode(),
                    "method": args.method,
                }
                body = json.dumps(payload).encode()
                req = InpaintRequest.model_validate(payload)
                backend.inpaint(req, Job())  # warm
                client.post(
                    url + "/v1/inpaint", content=body, headers={"content-type": "application/json"}
                )
                inproc, http = [], []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    backend.inpaint(req, Job())
                    inproc.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    r = client.post(
                        url + "/v1/inpaint",
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    r.json()
                    http.append(time.perf_counter() - t0)
                    assert r.status_code == 200, r.text
                mi, mh = statistics.median(inproc), statistics.median(http)
                rows.append((size, len(body), mi, mh, pct(http, 0.99)))
    finally:
        proc.terminate()
        proc.wait(10)

    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    )
    print(f"method: {args.method}, runs: {args.runs}\n")
    print(
        "| image | request body | in-process median | HTTP median | HTTP p99 | overhead | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for size, nbytes, mi, mh, p99 in rows:
        print(
            f"| {size}x{size} | {nbytes / 1e6:.2f} MB | {mi * 1000:.1f} ms | {mh * 1000:.1f} ms "
            f"| {p99 * 1000:.1f} ms | {(mh - mi) * 1000:.1f} ms | {mh / mi:.2f}x |"
        )


if __name__ == "__main__":
    main()
