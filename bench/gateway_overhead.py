"""Gateway: latency it adds per workflow, against calling the worker directly.

Starts redis-server, the workers and `lvi gateway` as real processes on loopback (profile
from --profile, default tiny, so that the models cost little and the plumbing shows), then
for each workflow and image size sends the same work N times

- directly to the worker (the request the gateway itself would send: base64 JSON), and
- through the gateway (session in Redis, image by reference, version committed),

and reports medians, p99 and the difference. The gateway's extra work per edit: read the
image from Redis, base64 it into the worker request, parse the worker's answer (header-only
image check), store the new image and version atomically, answer with the version.

    .venv/bin/python bench/gateway_overhead.py [--runs 20] [--sizes 512,2048]
        [--workflows upload,remove,segment,inpaint,chat] [--profile tiny] [--json OUT]
"""

from __future__ import annotations

import argparse
import base64
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.imaging import png_bytes, rect_mask, scene  # noqa: E402
from support.procs import ProcessFactory  # noqa: E402

KEY = "bench:bench-key"
AUTH = {"Authorization": "Bearer bench-key"}
WORKFLOW_WORKERS = {
    "upload": None,
    "remove": "inpaint",
    "segment": "seem",
    "inpaint": "gligen",
    "chat": "llava",
}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def worker_seconds(gw: httpx.Client) -> float:
    """Seconds the gateway has spent waiting on workers so far (its own histogram)."""
    text = gw.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("lvi_gateway_worker_call_seconds_sum")
    )


def measure(
    gw: httpx.Client,
    direct: Callable[[], Any] | None,
    setup: Callable[[], Any] | None,
    through: Callable[[], Any],
    runs: int,
) -> tuple[list[float], list[float], list[float]]:
    """Alternate direct and gateway calls (so load from other processes hits both alike).

    Returns milliseconds: direct, through the gateway, and the gateway's own time (through
    minus the time the gateway itself measured waiting on the worker for that request).
    """
    for fn in (direct, setup, through):  # warm-up: connections, caches
        if fn:
            fn()
    d: list[float] = []
    g: list[float] = []
    own: list[float] = []
    for _ in range(runs):
        if direct:
            t0 = time.perf_counter()
            direct()
            d.append((time.perf_counter() - t0) * 1000)
        if setup:
            setup()
        w0 = worker_seconds(gw)
        t0 = time.perf_counter()
        through()
        dt = time.perf_counter() - t0
        g.append(dt * 1000)
        own.append((dt - (worker_seconds(gw) - w0)) * 1000)
    return d or [0.0], g, own


def check(r: httpx.Response) -> httpx.Response:
    if r.status_code >= 400:
        raise RuntimeError(f"{r.request.method} {r.request.url} -> {r.status_code} {r.text[:300]}")
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--sizes", default="512,2048")
    ap.add_argument("--workflows", default="upload,remove,segment,inpaint,chat")
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    workflows = args.workflows.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]

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
        redis = procs.redis()
        needed = sorted({w for wf in workflows if (w := WORKFLOW_WORKERS[wf])})
        workers = {name: procs.lvi("worker", name, wait=False) for name in needed}
        for w in workers.values():
            w.wait_ready(timeout=300)
        gw_env = {
            "GATEWAY_REDIS_URL": redis.url,
            "GATEWAY_API_KEYS": KEY,
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
            "GATEWAY_MAX_VERSIONS": "100000",
            "GATEWAY_MAX_SESSION_BYTES": str(64 * 1024**3),
            # Chat without history, so both sides send the same single turn.
            "GATEWAY_CHAT_HISTORY_MESSAGES": "0",
        }
        for name, w in workers.items():
            gw_env[f"GATEWAY_{name.upper()}_URL"] = w.url
        gw = procs.lvi("gateway", env=gw_env, ready_path="/healthz")
        rows = run(gw.url, {n: w.url for n, w in workers.items()}, workflows, sizes, args.runs)
    finally:
        procs.close()
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"Profile: {args.profile}; runs per cell: {args.runs}\n")
    print(
        "| workflow | image | direct median | through gateway median | difference |"
        " gateway's own median | gateway's own p99 |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['workflow']} | {r['size']}x{r['size']} ({r['image_mb']} MB) |"
            f" {r['direct_median']:.1f} ms | {r['gateway_median']:.1f} ms |"
            f" {r['added_median']:+.1f} ms | {r['own_median']:.1f} ms | {r['own_p99']:.1f} ms |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


def run(
    gw_url: str, workers: dict[str, str], workflows: list[str], sizes: list[int], runs: int
) -> list[dict[str, Any]]:
    gw = httpx.Client(base_url=gw_url, headers=AUTH, timeout=600)
    direct = {n: httpx.Client(base_url=u, timeout=600) for n, u in workers.items()}
    rows: list[dict[str, Any]] = []
    for size in sizes:
        rows += bench_size(gw, direct, size, workflows, runs)
    return rows


def bench_size(
    gw: httpx.Client, direct: dict[str, httpx.Client], size: int, workflows: list[str], runs: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    image = png_bytes(scene(size, size, seed=1))
    b64 = base64.b64encode(image).decode()
    box = (size // 4, size // 4, size // 2, size // 2)
    mask = png_bytes(rect_mask(size, size, box))
    mask_b64 = base64.b64encode(mask).decode()
    sid = check(gw.post("/v1/sessions")).json()["id"]
    check(
        gw.post(f"/v1/sessions/{sid}/images", content=image, headers={"Content-Type": "image/png"})
    )
    mask_id = check(
        gw.post(f"/v1/sessions/{sid}/masks", content=mask, headers={"Content-Type": "image/png"})
    ).json()["mask_id"]
    norm = [0.25, 0.25, 0.5, 0.5]
    print(f"{size}x{size}: image {len(image) / 1e6:.2f} MB", file=sys.stderr)

    def back_to_first() -> None:
        # Keep every edit on the uploaded image (same input size and content each run).
        check(gw.post(f"/v1/sessions/{sid}/checkout", json={"version": 1}))

    Case = tuple[Callable[[], Any] | None, Callable[[], Any] | None, Callable[[], Any]]
    cases: dict[str, Case] = {}
    cases["upload"] = (
        None,
        None,
        lambda: check(
            gw.post(
                f"/v1/sessions/{sid}/images",
                content=image,
                headers={"Content-Type": "image/png"},
            )
        ),
    )
    if "inpaint" in direct:
        body_inpaint = json.dumps({"image": b64, "mask": mask_b64, "dilate": 4})
        cases["remove"] = (
            lambda: check(
                direct["inpaint"].post(
                    "/v1/inpaint",
                    content=body_inpaint,
                    headers={"Content-Type": "application/json"},
                )
            ),
            back_to_first,
            lambda: check(
                gw.post(f"/v1/sessions/{sid}/remove", json={"mask_id": mask_id, "dilate": 4})
            ),
        )
    if "seem" in direct:
        pt = [size * 3 / 8, size * 3 / 8]
        body_seem = json.dumps({"image": b64, "points": [pt], "merge": True})
        cases["segment"] = (
            lambda: check(
                direct["seem"].post(
                    "/v1/segment",
                    content=body_seem,
                    headers={"Content-Type": "application/json"},
                )
            ),
            None,
            lambda: check(gw.post(f"/v1/sessions/{sid}/segment", json={"points": [pt]})),
        )
    if "gligen" in direct:
        body_gligen = json.dumps(
            {
                "prompt": "a cat",
                "phrases": ["a cat"],
                "boxes": [norm],
                "image": b64,
                "steps": 1,
                "seed": 1,
            }
        )
        cases["inpaint"] = (
            lambda: check(
                direct["gligen"].post(
                    "/v1/generate",
                    content=body_gligen,
                    headers={"Content-Type": "application/json"},
                )
            ),
            back_to_first,
            lambda: check(
                gw.post(
                    f"/v1/sessions/{sid}/inpaint",
                    json={
                        "boxes": [list(box)],
                        "phrases": ["a cat"],
                        "prompt": "a cat",
                        "steps": 1,
                        "seed": 1,
                    },
                )
            ),
        )
    if "llava" in direct:
        uri = "data:image/png;base64," + b64
        body_llava = json.dumps(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": uri}},
                            {"type": "text", "text": "Describe."},
                        ],
                    }
                ],
                "max_tokens": 4,
                "seed": 1,
            }
        )
        cases["chat"] = (
            lambda: check(
                direct["llava"].post(
                    "/v1/chat/completions",
                    content=body_llava,
                    headers={"Content-Type": "application/json"},
                )
            ),
            None,
            lambda: check(
                gw.post(
                    f"/v1/sessions/{sid}/chat",
                    json={"message": "Describe.", "max_tokens": 4, "seed": 1},
                )
            ),
        )
    for wf in workflows:
        if wf not in cases:
            continue
        d, g, own = measure(gw, *cases[wf], runs)
        row = {
            "workflow": wf,
            "size": size,
            "image_mb": round(len(image) / 1e6, 2),
            "direct_median": statistics.median(d),
            "direct_p99": pct(d, 0.99),
            "gateway_median": statistics.median(g),
            "gateway_p99": pct(g, 0.99),
            "own_median": statistics.median(own),
            "own_p99": pct(own, 0.99),
        }
        row["added_median"] = row["gateway_median"] - row["direct_median"]
        rows.append(row)
        print(
            f"  {wf}: direct {row['direct_median']:.1f} ms, gateway {row['gateway_median']:.1f} ms,"
            f" gateway's own {row['own_median']:.1f} ms",
            file=sys.stderr,
        )
    return rows


if __name__ == "__main__":
    main()
