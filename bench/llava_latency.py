"""llava worker: time to first token and decode speed through HTTP vs in-process ``generate``.

Starts a real worker (``lvi worker llava``, tiny profile unless ``--model`` says otherwise) on
a loopback port and measures, for the same request (one 48x40 PNG as a data URI + a short
question, greedy, a fixed ``max_tokens``):

- ``model.generate``: the bare transformers call on already-built inputs (the floor);
- ``backend.generate``: :meth:`LlavaBackend.generate` in-process on a parsed request (adds
  image decoding, the chat template, history fitting, the text streamer and stop handling);
- ``HTTP stream``: the OpenAI SSE stream from the worker (adds JSON, admission control,
  the inference thread hand-off, SSE framing and loopback);
- ``HTTP json``: the non-streaming reply (total latency only).

TTFT is measured from the call (or the request's first byte) to the first generated text;
tokens/s is ``(completion_tokens - 1) / (end - first token)``. The paths take turns, run by
run, and the figures are medians over ``--runs``: these 2-core machines are noisy, so compare
the ratios within one run, not the milliseconds across runs.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/llava_latency.py [--runs 7] [--tokens 32 256]
"""

from __future__ import annotations

import argparse
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

from support.imaging import b64, png_bytes, scene
from support.procs import free_port

from lvi.contracts.llava import ChatCompletionRequest
from lvi.worker import Job
from services.llava.backend import LlavaBackend
from services.llava.settings import LlavaSettings


def request_body(max_tokens: int, stream: bool) -> dict[str, Any]:
    uri = "data:image/png;base64," + b64(png_bytes(scene(48, 40, seed=1)))
    return {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": uri}},
                    {"type": "text", "text": "What is in this image? Answer in detail."},
                ],
            }
        ],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
        **({"stream_options": {"include_usage": True}} if stream else {}),
    }


def med(values: list[float]) -> float:
    return statistics.median(values)


def bare_generate(backend: LlavaBackend, body: dict[str, Any]) -> tuple[float, float, int]:
    """TTFT, total seconds and tokens of ``model.generate`` on prebuilt inputs."""
    import torch
    from transformers.generation.streamers import BaseStreamer

    chat = backend.parse(ChatCompletionRequest.model_validate(body))
    inputs, meta = backend._build_inputs(chat, Job())
    marks: list[float] = []

    class Clock(BaseStreamer):
        def put(self, value: Any) -> None:
            marks.append(time.perf_counter())

        def end(self) -> None:
            pass

    t0 = time.perf_counter()
    with torch.inference_mode():
        out = backend.model.generate(
            **inputs, max_new_tokens=meta.max_new_tokens, do_sample=False, streamer=Clock()
        )
    t1 = time.perf_counter()
    n = int(out.shape[1] - inputs["input_ids"].shape[1])
    return marks[1] - t0, t1 - t0, n  # marks[0] is the prompt


def backend_generate(backend: LlavaBackend, body: dict[str, Any]) -> tuple[float, float, int]:
    first: list[float] = []
    job = Job()
    job._emit = lambda ev: first.append(time.perf_counter()) if ev[0] == "delta" else None
    t0 = time.perf_counter()
    result = backend.generate(backend.parse(ChatCompletionRequest.model_validate(body)), job)
    t1 = time.perf_counter()
    return first[0] - t0, t1 - t0, result.completion_tokens


def http_stream(client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[float, float, int]:
    first = None
    tokens = 0
    t0 = time.perf_counter()
    with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            chunk = json.loads(line[5:])
            if first is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter()
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    t1 = time.perf_counter()
    assert first is not None
    return first - t0, t1 - t0, tokens


def http_json(client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    r = client.post(url + "/v1/chat/completions", json=body)
    r.raise_for_status()
    t1 = time.perf_counter()
    return float("nan"), t1 - t0, int(r.json()["usage"]["completion_tokens"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--tokens", type=int, nargs="+", default=[32, 256])
    ap.add_argument("--model", default="tiny:llava")
    ap.add_argument("--out", help="also write the results as JSON here")
    args = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cache = os.environ.get("LVI_CACHE_DIR") or tempfile.mkdtemp(prefix="lvi-bench-")
    os.environ["LVI_CACHE_DIR"] = cache
    port = free_port()
    env = {
        **os.environ,
        "LLAVA_MODEL": args.model,
        "LVI_PROFILE": "tiny",
        "LVI_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher", "worker", "llava", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    rows: list[dict[str, Any]] = []
    try:
        for _ in range(1200):
            try:
                if httpx.get(url + "/v2/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise SystemExit("the worker exited before it was ready")
            time.sleep(0.1)
        backend = LlavaBackend(LlavaSettings(model=args.model, profile="tiny"))
        backend.load()
        backend.warmup()
        with httpx.Client(timeout=600) as client:
            for max_tokens in args.tokens:
                ways = {
                    "model.generate": lambda b: bare_generate(backend, b),
                    "backend.generate": lambda b: backend_generate(backend, b),
                    "HTTP stream": lambda b: http_stream(client, url, b),
                    "HTTP json": lambda b: http_json(client, url, b),
                }
                bodies = {n: request_body(max_tokens, stream=n == "HTTP stream") for n in ways}
                for name, fn in ways.items():
                    fn(bodies[name])  # warm each path
                # Round-robin, so that load from elsewhere on the machine hits every path alike.
                samples: dict[str, list[tuple[float, float, int]]] = {n: [] for n in ways}
                for _ in range(args.runs):
                    for name, fn in ways.items():
                        samples[name].append(fn(bodies[name]))
                for name, got in samples.items():
                    ttft = med([s[0] for s in got])
                    total = med([s[1] for s in got])
                    n = got[0][2]
                    tps = med([(s[2] - 1) / (s[1] - s[0]) for s in got]) if ttft == ttft else None
                    rows.append(
                        {
                            "max_tokens": max_tokens,
                            "path": name,
                            "ttft_ms": None if ttft != ttft else round(ttft * 1000, 1),
                            "total_ms": round(total * 1000, 1),
                            "tokens": n,
                            "tokens_per_s": None if tps is None else round(tps, 1),
                        }
                    )
                    print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(30)

    print(
        f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, model {args.model}, runs {args.runs}\n"
    )
    print(
        "| max_tokens | path | TTFT median | total median | tokens | decode tok/s | TTFT vs model.generate |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        base = next(
            r
            for r in rows
            if r["max_tokens"] == row["max_tokens"] and r["path"] == "model.generate"
        )
        ratio = (
            f"{row['ttft_ms'] / base['ttft_ms']:.2f}x"
            if row["ttft_ms"] and base["ttft_ms"]
            else "-"
        )
        print(
            f"| {row['max_tokens']} | {row['path']} | "
            f"{'-' if row['ttft_ms'] is None else str(row['ttft_ms']) + ' ms'} | {row['total_ms']} ms | "
            f"{row['tokens']} | {row['tokens_per_s'] or '-'} | {ratio} |"
        )
    if args.out:
        Path(args.out).write_text(
            json.dumps({"model": args.model, "runs": args.runs, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
