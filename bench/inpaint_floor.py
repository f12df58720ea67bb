"""Inpaint worker: the whole HTTP request against its codec + fill floor (issue 16).

Three things are timed on the same arrays, interleaved round by round (this 2-core machine
is shared and noisy, so only medians and ratios from one run mean anything):

- **bare**: ``cv2.inpaint`` (Telea, the worker's radius) on the crop the worker fills;
- **floor**: what no implementation can skip: ``cv2.imdecode`` of the input PNG, the same
  fill of the crop pasted back, and ``cv2.imencode`` at the worker's PNG level
  (``lvi.images.PNG_LEVEL``);
- **request**: ``POST /v1/inpaint`` to a real ``lvi worker inpaint`` process (OpenCV backend)
  with a prepared JSON body, from sending until the whole answer is received (the client's
  own JSON parsing of the answer is not counted).

Then a profile of where the server's time goes, each stage timed in-process on the same
request: JSON parse, pydantic validation (base64 + header check), the backend (with its top
functions from cProfile), rendering the answer (the route with a stubbed runtime, plus FastAPI's
response serialisation when the route returns a model), and the rest of the request
(uvicorn, middleware, thread-pool hop, loopback transfer, client).

    .venv/bin/python bench/inpaint_floor.py --runs 31 --label after --out bench/results/inpaint_floor.json

The JSON file keeps one entry per ``--label``, so a run of this script in a checkout of the
old code (``--label before``) and one in this one land side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import datetime
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.imaging import png_bytes, rect_mask, scene  # noqa: E402
from support.procs import free_port  # noqa: E402

from lvi.contracts.inpaint import InpaintRequest  # noqa: E402
from lvi.images import PNG_LEVEL  # noqa: E402
from lvi.worker import Job  # noqa: E402
from services.inpaint.backends import build_backend  # noqa: E402
from services.inpaint.settings import InpaintSettings  # noqa: E402


def ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def start_worker() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "INPAINT_PROFILE": "cpu", "LVI_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher", "worker", "inpaint", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/v2/health/ready").status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit("the worker did not become ready")


def render_stage(backend_result: Any, req: Any) -> Callable[[], Any]:
    """The route's own work after the backend: the endpoint with a runtime whose ``run`` calls
    straight through to a backend that returns ``backend_result``, then FastAPI's serialisation
    when the endpoint returns a model (the old route did)."""
    from fastapi.responses import JSONResponse, Response
    from fastapi.routing import serialize_response

    from services.inpaint.app import build_router

    route = next(r for r in build_router().routes if getattr(r, "path", "") == "/v1/inpaint")

    class Stub:
        class backend:
            @staticmethod
            def inpaint(_req: Any, _job: Any) -> Any:
                return backend_result

        @staticmethod
        async def run(fn: Callable[..., Any], *args: Any, deadline: Any, **_: Any) -> Any:
            return fn(*args, Job())

    class Caller:  # the request: a caller that never hangs up
        @staticmethod
        async def is_disconnected() -> bool:
            return False

    async def once() -> bytes:
        out = await route.endpoint(  # type: ignore[attr-defined]
            req=req, request=Caller(), rt=Stub(), deadline=None
        )
        if isinstance(out, Response):
            return bytes(out.body)
        content = await serialize_response(
            field=route.response_field,  # type: ignore[attr-defined]
            response_content=out,
            is_coroutine=True,
        )
        return bytes(JSONResponse(content).body)

    loop = asyncio.new_event_loop()
    return lambda: loop.run_until_complete(once())


def backend_top(backend: Any, req: Any, runs: int, top: int) -> list[dict[str, Any]]:
    """The backend's most expensive functions (own time), from cProfile over ``runs`` calls."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(runs):
        backend.inpaint(req, Job())
    prof.disable()
    stats = pstats.Stats(prof)
    rows = []
    for (file, line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = name if file == "~" else f"{Path(file).name}:{line}({name})"
        rows.append({"function": where, "own_ms": round(tt / runs * 1000, 2)})
    rows.sort(key=lambda r: -r["own_ms"])
    return rows[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=31, help="interleaved rounds per size")
    ap.add_argument("--profile-runs", type=int, default=9)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    ap.add_argument("--label", default="after", help="key of this run in the JSON file")
    ap.add_argument("--out", default=None, help="JSON file to merge this run into")
    args = ap.parse_args()

    settings = InpaintSettings(profile="cpu")
    backend = build_backend(settings)
    backend.load()
    proc, url = start_worker()
    sizes: dict[str, Any] = {}
    try:
        with httpx.Client(timeout=300) as client:
            for size in args.sizes:
                sizes[f"{size}x{size}"] = measure(client, url, backend, settings, size, args)
    finally:
        proc.terminate()
        proc.wait(10)

    run = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}",
        "opencv": cv2.__version__,
        "png_level": PNG_LEVEL,
        "runs": args.runs,
        "sizes": sizes,
    }
    print(json.dumps(run, indent=1))
    if args.out:
        path = Path(args.out)
        data = json.loads(path.read_text()) if path.exists() else {}
        data.setdefault("command", "bench/inpaint_floor.py --runs 31 --label <before|after>")
        data[args.label] = run
        path.write_text(json.dumps(data, indent=1) + "\n")
    print("\n| image | bare cv2.inpaint | floor | request | request / floor | request / bare |")
    print("|---|---|---|---|---|---|")
    for name, s in sizes.items():
        m = s["median_ms"]
        print(
            f"| {name} | {m['bare']} ms | {m['floor']} ms | {m['request']} ms "
            f"| {s['request_over_floor']}x | {s['request_over_bare']}x |"
        )


def measure(
    client: httpx.Client, url: str, backend: Any, settings: Any, size: int, args: Any
) -> dict[str, Any]:
    img = scene(size, size, seed=size)
    s = size // 8
    mask = rect_mask(size, size, (3 * s, 3 * s, 4 * s, 4 * s))  # ~1.6 % of the image
    image_png = png_bytes(img, compress_level=1)
    payload = {
        "image": base64.b64encode(image_png).decode(),
        "mask": base64.b64encode(png_bytes(mask)).decode(),
        "method": "telea",
    }
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    first = client.post(url + "/v1/inpaint", content=body, headers=headers)
    assert first.status_code == 200, first.text
    x0, y0, x1, y1 = first.json()["region"]

    flag, radius = cv2.INPAINT_TELEA, settings.radius
    crop_mask = np.ascontiguousarray(mask[y0:y1, x0:x1] >= 128)
    mask_u8 = crop_mask.astype(np.uint8) * 255
    decoded = np.asarray(cv2.imdecode(np.frombuffer(image_png, np.uint8), cv2.IMREAD_UNCHANGED))
    crop = np.ascontiguousarray(decoded[y0:y1, x0:x1])

    def bare() -> None:
        cv2.inpaint(crop, mask_u8, radius, flag)

    def floor() -> None:
        pixels = np.asarray(cv2.imdecode(np.frombuffer(image_png, np.uint8), cv2.IMREAD_UNCHANGED))
        region = pixels[y0:y1, x0:x1]
        filled = cv2.inpaint(np.ascontiguousarray(region), mask_u8, radius, flag)
        region[crop_mask] = filled[crop_mask]
        cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])

    def request() -> None:
        r = client.post(url + "/v1/inpaint", content=body, headers=headers)
        assert r.status_code == 200, r.text

    steps = {"bare": bare, "floor": floor, "request": request}
    times: dict[str, list[float]] = {k: [] for k in steps}
    names = list(steps)
    for i in range(args.runs):
        for name in names[i % 3 :] + names[: i % 3]:  # rotate the order every round
            times[name].extend(timed(steps[name], 1))
    med = {k: ms(v) for k, v in times.items()}

    # Where the server's time goes, stage by stage, in this process.
    n = args.profile_runs
    parsed = json.loads(body)
    req = InpaintRequest.model_validate(parsed)
    result = backend.inpaint(req, Job())
    stages = {
        "json_parse": ms(timed(lambda: json.loads(body), n)),
        "validate (base64 + header)": ms(timed(lambda: InpaintRequest.model_validate(parsed), n)),
        "backend": ms(timed(lambda: backend.inpaint(req, Job()), n)),
        "render answer": ms(timed(render_stage(result, req), n)),
    }
    stages["rest of the request (uvicorn, hop, transfer, client)"] = round(
        med["request"] - sum(stages.values()), 2
    )
    return {
        "request_body_bytes": len(body),
        "crop": [x0, y0, x1, y1],
        "median_ms": med,
        "p90_ms": {
            k: round(sorted(v)[int(0.9 * (len(v) - 1))] * 1000, 2) for k, v in times.items()
        },
        "floor_over_bare": round(med["floor"] / med["bare"], 2),
        "request_over_bare": round(med["request"] / med["bare"], 2),
        "request_over_floor": round(med["request"] / med["floor"], 2),
        "profile_ms": stages,
        "backend_top_functions": backend_top(backend, req, n, 8),
    }


if __name__ == "__main__":
    main()
