"""Gateway capacity: its per-request cost against a bare FastAPI ceiling, the Redis bytes it
stores per version, and the segmentation cache (hit against miss) seen through it.

Everything runs as real processes on loopback (redis-server, workers, `lvi gateway`), and
each comparison is measured in one run, interleaved, because this machine's timings move by
2-3x with other load. Three sections:

1. **ceiling**: a bare FastAPI app (one route returning a small JSON, served by uvicorn
   exactly as `lvi` serves its apps) against the gateway's cheapest routes:
   ``GET /healthz`` (the framework plus the gateway's middleware: request id, metrics,
   access log), ``GET /v1/sessions/{id}`` (plus auth, the Redis rate-limit script and two
   Redis round trips) and ``GET /v1/sessions/{id}/images/head`` (plus the image bytes).
   Sequential latency (median, p99) and closed-loop throughput with ``--concurrency``
   clients for ``--seconds`` each.
2. **storage**: ``--versions`` edits of one image (OpenCV remove, so every version is a new
   image) through the gateway into a fresh Redis; then ``MEMORY USAGE`` of every key of the
   session, ``INFO memory`` and the AOF file growth, against the bytes of the images
   themselves.
3. **seg-cache**: ``POST /segment`` through the gateway on a new image (embedding cache miss
   in the seem worker) against a second click on the same image (hit), with tiny SAM; the
   worker's own cache counters confirm which was which.

    .venv/bin/python bench/gateway_capacity.py [--only ceiling,storage,seg-cache]
        [--runs 200] [--seconds 5] [--concurrency 32] [--versions 20] [--size 512]
        [--json bench/results/gateway_capacity.json]

The gateway's added latency per workflow against calling the worker directly is
bench/gateway_overhead.py (not repeated here).
"""

from __future__ import annotations

import argparse
import asyncio
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

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support import gw as img  # noqa: E402
from support.procs import ProcessFactory, ServerProcess, free_port  # noqa: E402

KEY = "bench:bench-key"
AUTH = {"Authorization": "Bearer bench-key"}


# -- the ceiling: a bare FastAPI app ---------------------------------------------------------
def serve_echo(port: int) -> int:
    """A bare FastAPI app on uvicorn, served like every lvi app (launcher.serve.serve)."""
    from fastapi import FastAPI

    from launcher.serve import serve

    app = FastAPI()

    @app.get("/echo")
    async def echo() -> dict[str, str]:
        return {"status": "live"}

    return serve(app, "127.0.0.1", port, "warning")


def start_echo(procs: ProcessFactory) -> ServerProcess:
    port = free_port()
    srv = ServerProcess(
        name="echo",
        args=[sys.executable, str(Path(__file__).resolve()), "--serve-echo", str(port)],
        env=procs.base_env,
        port=port,
        log_path=procs.log_dir / f"echo-{port}.log",
        ready_path="/echo",
    )
    procs.servers.append(srv)
    return srv.start()


# -- helpers --------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def stats(ms: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p99_ms": round(pct(ms, 0.99), 3),
        "n": len(ms),
    }


def check(r: httpx.Response) -> httpx.Response:
    if r.status_code >= 400:
        raise RuntimeError(f"{r.request.method} {r.request.url} -> {r.status_code} {r.text[:300]}")
    return r


def interleaved(calls: dict[str, Callable[[], Any]], runs: int) -> dict[str, list[float]]:
    """Each call once per round, in turn, so that outside load hits them alike."""
    out: dict[str, list[float]] = {k: [] for k in calls}
    for fn in calls.values():
        for _ in range(5):
            fn()  # warm-up
    for _ in range(runs):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            out[name].append((time.perf_counter() - t0) * 1000)
    return out


async def closed_loop(
    url: str, headers: dict[str, str], concurrency: int, seconds: float
) -> dict[str, float]:
    """``concurrency`` clients each sending the next request when the last one answered."""
    limits = httpx.Limits(max_connections=concurrency, keepalive_expiry=2.0)
    lat: list[float] = []
    errors = 0
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as c:
        for _ in range(concurrency):
            await c.get(url)  # warm up the pool
        end = time.perf_counter() + seconds

        async def user() -> None:
            nonlocal errors
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                try:
                    r = await c.get(url)
                    if r.status_code >= 400:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                lat.append((time.perf_counter() - t0) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {
        "rps": round(len(lat) / wall, 1),
        "median_ms": round(statistics.median(lat), 2),
        "p99_ms": round(pct(lat, 0.99), 2),
        "errors": errors,
        "requests": len(lat),
    }


def new_session(gw: str, size: int, seed: int = 0) -> tuple[str, dict[str, Any]]:
    sid = check(httpx.post(f"{gw}/v1/sessions", headers=AUTH, json={})).json()["id"]
    v = check(
        httpx.post(
            f"{gw}/v1/sessions/{sid}/images",
            headers={**AUTH, "Content-Type": "image/png"},
            content=img.png(img.photo(size, size, seed=seed)),
        )
    ).json()
    return sid, v


# -- sections -------------------------------------------------------------------------------
def bench_ceiling(procs: ProcessFactory, gw: str, args: argparse.Namespace) -> dict[str, Any]:
    echo = start_echo(procs)
    sid, _ = new_session(gw, 64)
    targets = {
        "bare FastAPI GET /echo": (f"{echo.url}/echo", {}),
        "gateway GET /healthz": (f"{gw}/healthz", {}),
        "gateway GET /v1/sessions/{id}": (f"{gw}/v1/sessions/{sid}", AUTH),
        "gateway GET .../images/head (64x64 PNG)": (f"{gw}/v1/sessions/{sid}/images/head", AUTH),
    }
    clients = {name: httpx.Client(headers=h, timeout=30) for name, (_u, h) in targets.items()}
    calls = {
        name: (lambda c=clients[name], u=u: check(c.get(u)))  # type: ignore[misc]
        for name, (u, _h) in targets.items()
    }
    seq = interleaved(calls, args.runs)
    for c in clients.values():
        c.close()
    base = statistics.median(seq["bare FastAPI GET /echo"])
    out: dict[str, Any] = {"sequential": {}, "concurrent": {}}
    for name, ms in seq.items():
        out["sequential"][name] = {**stats(ms), "x_ceiling": round(statistics.median(ms) / base, 2)}
    # Closed-loop throughput, one target at a time (alternating twice to even out load).
    conc: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for _ in range(2):
        for name, (u, h) in targets.items():
            conc[name].append(asyncio.run(closed_loop(u, h, args.concurrency, args.seconds / 2)))
    ceiling_rps = sum(r["rps"] for r in conc["bare FastAPI GET /echo"]) / 2
    for name, runs in conc.items():
        rps = sum(r["rps"] for r in runs) / 2
        out["concurrent"][name] = {
            "rps": round(rps, 1),
            "median_ms": round(statistics.median(r["median_ms"] for r in runs), 2),
            "p99_ms": round(max(r["p99_ms"] for r in runs), 2),
            "errors": sum(int(r["errors"]) for r in runs),
            "share_of_ceiling": round(rps / ceiling_rps, 3),
        }
    out["concurrency"] = args.concurrency
    echo.stop()
    return out


def bench_storage(
    procs: ProcessFactory, gw: str, redis: ServerProcess, args: argparse.Namespace
) -> dict[str, Any]:
    import redis as redis_sync

    r = redis_sync.Redis.from_url(redis.url)
    aof_dir = Path(r.config_get("dir")["dir"])

    def aof_bytes() -> int:
        return sum(p.stat().st_size for p in aof_dir.rglob("*.aof"))

    r.memory_purge() if hasattr(r, "memory_purge") else None
    mem0, aof0 = int(r.info("memory")["used_memory"]), aof_bytes()
    size = args.size
    sid, _ = new_session(gw, size, seed=1)
    masks = []
    for i in range(4):  # four painted masks, used in turn
        x = (i * size // 4) + size // 16
        m = check(
            httpx.post(
                f"{gw}/v1/sessions/{sid}/masks",
                headers={**AUTH, "Content-Type": "image/png"},
                content=img.mask_png(
                    img.rect_mask(size, size, (x, x, x + size // 8, x + size // 8))
                ),
            )
        ).json()
        masks.append(m["mask_id"])
    for i in range(args.versions - 1):
        check(
            httpx.post(
                f"{gw}/v1/sessions/{sid}/remove",
                headers=AUTH,
                # A different dilation each time: every version is a new image (identical
                # results would be stored once, by content hash).
                json={"mask_id": masks[i % len(masks)], "dilate": 2 + i},
                timeout=120,
            )
        )
    session = check(httpx.get(f"{gw}/v1/sessions/{sid}", headers=AUTH)).json()
    versions = session["versions"]
    image_bytes = sum({v["image_hash"]: v["bytes"] for v in versions}.values())
    all_version_bytes = sum(v["bytes"] for v in versions)
    mask_bytes = session["bytes"] - image_bytes
    keys = {k.decode(): int(r.memory_usage(k) or 0) for k in r.scan_iter(f"lvi:{{{sid}}}:*")}
    by_kind: dict[str, int] = {}
    for k, n in keys.items():
        kind = k.split("}:", 1)[1].split(":", 1)[0]
        by_kind[kind] = by_kind.get(kind, 0) + n
    total = sum(keys.values())
    mem1, aof1 = int(r.info("memory")["used_memory"]), aof_bytes()
    n = len(versions)
    return {
        "image": f"{size}x{size} PNG (textured test photo)",
        "versions": n,
        "unique_images": len({v["image_hash"] for v in versions}),
        "image_bytes": image_bytes,
        "image_bytes_if_not_deduplicated": all_version_bytes,
        "image_bytes_per_unique_image": round(
            image_bytes / len({v["image_hash"] for v in versions})
        ),
        "mask_bytes": mask_bytes,
        "redis_memory_usage_bytes": total,
        "redis_bytes_per_version": round(total / n),
        "redis_over_image_bytes": round(total / image_bytes, 3),
        "redis_over_image_and_mask_bytes": round(total / (image_bytes + mask_bytes), 3),
        "by_key_kind": dict(sorted(by_kind.items())),
        "used_memory_delta": mem1 - mem0,
        "aof_bytes_delta": aof1 - aof0,
        "aof_bytes_per_version": round((aof1 - aof0) / n),
        "aof_over_image_bytes": round((aof1 - aof0) / image_bytes, 3),
    }


def bench_seg_cache(gw: str, seem: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    def counter(name: str) -> float:
        text = httpx.get(f"{seem.url}/metrics", timeout=10).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name + "_total")
        )

    size = args.size
    click = {"points": [[size // 2, size // 2]], "labels": [1]}
    miss: list[float] = []
    hit: list[float] = []
    h0, m0 = counter("lvi_seem_embedding_cache_hits"), counter("lvi_seem_embedding_cache_misses")
    runs = max(5, args.runs // 10)
    for i in range(runs + 2):
        sid, _ = new_session(gw, size, seed=100 + i)  # a new image: its embedding is not cached
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            check(
                httpx.post(f"{gw}/v1/sessions/{sid}/segment", headers=AUTH, json=click, timeout=120)
            )
            times.append((time.perf_counter() - t0) * 1000)
        if i >= 2:  # the first two are warm-up
            miss.append(times[0])
            hit.append(times[1])
    h1, m1 = counter("lvi_seem_embedding_cache_hits"), counter("lvi_seem_embedding_cache_misses")
    return {
        "image": f"{size}x{size}",
        "model": "tiny SAM (random weights)",
        "miss": stats(miss),
        "hit": stats(hit),
        "miss_over_hit": round(statistics.median(miss) / statistics.median(hit), 2),
        "worker_cache_hits": h1 - h0,
        "worker_cache_misses": m1 - m0,
    }


# -- main -----------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve-echo", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--only", default="ceiling,storage,seg-cache")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--versions", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if args.serve_echo:
        sys.exit(serve_echo(args.serve_echo))
    only = set(args.only.split(","))

    tmp = Path(tempfile.mkdtemp(prefix="lvi-capacity-"))
    env = {
        **os.environ,
        "LVI_PROFILE": "tiny",
        "HF_HUB_OFFLINE": "1",
        "LVI_CACHE_DIR": os.environ.get("LVI_CACHE_DIR", str(tmp / "cache")),
        # Logs as in production (JSON, info level), into files.
        "LVI_LOG_JSON": "true",
    }
    procs = ProcessFactory(env, tmp)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "load_average_before": [round(x, 1) for x in os.getloadavg()],
        "args": vars(args),
    }
    try:
        redis = procs.redis(appendonly=True)
        workers: dict[str, ServerProcess] = {}
        if "storage" in only:
            workers["inpaint"] = procs.lvi(
                "worker", "inpaint", env={"INPAINT_BACKEND": "opencv"}, wait=False
            )
        if "seg-cache" in only:
            workers["seem"] = procs.lvi("worker", "seem", env={"SEEM_BACKEND": "sam"}, wait=False)
        for w in workers.values():
            w.wait_ready(timeout=240)
        gw_env = {
            "GATEWAY_REDIS_URL": redis.url,
            "GATEWAY_API_KEYS": KEY,
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "6000000",
            "GATEWAY_RATE_LIMIT_BURST": "100000",
        }
        for name in ("llava", "seem", "gligen", "inpaint"):
            w = workers.get(name)
            gw_env[f"GATEWAY_{name.upper()}_URL"] = w.url if w else "http://127.0.0.1:9"
        gw = procs.lvi("gateway", env=gw_env, ready_path="/healthz").url
        if "ceiling" in only:
            print("ceiling ...", file=sys.stderr)
            results["ceiling"] = bench_ceiling(procs, gw, args)
        if "storage" in only:
            print("storage ...", file=sys.stderr)
            results["storage"] = bench_storage(procs, gw, redis, args)
        if "seg-cache" in only:
            print("seg-cache ...", file=sys.stderr)
            results["seg_cache"] = bench_seg_cache(gw, workers["seem"], args)
    finally:
        procs.close()
    results["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
