"""Which lossless format should workers encode their outputs in? Size and speed at 12 MP.

Encodes a 4000x3000 RGB image (a phone photo's size) with each candidate and decodes the
result, timing both. Three contents:

- ``photo``: the test scene (gradients, shapes and Gaussian noise, sigma 12): a photo's
  sensor noise is what makes real photos compress badly losslessly;
- ``smooth``: the same scene without noise (a render, a screenshot, a generated image);
- ``random``: uniform random bytes, the worst case of any lossless coder (bytes only matter:
  the byte limit must hold even this, or a worker output can be refused for its content).

Candidates: OpenCV PNG at zlib levels 1/3/6, PIL PNG (default level 6, and level 1), lossless
WebP with OpenCV (quality 101) and with PIL at fast efforts (method 0, quality 0 and
method 1, quality 10). Timings are the median of ``--runs`` in one run (2 noisy cores).

    .venv/bin/python bench/encode_choice.py --runs 3 --out bench/results/encode_choice.json
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.imaging import scene


def _smooth(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            128 + 60 * np.sin(xx / 37.0),
            128 + 60 * np.cos(yy / 29.0),
            128 + 40 * np.sin((xx + yy) / 53.0),
        ],
        axis=-1,
    )
    img: np.ndarray = np.clip(base, 0, 255).astype(np.uint8)
    img[height // 4 : height // 2, width // 4 : width // 2] = (200, 40, 40)
    return img


def _cv2_png(level: int) -> Callable[[np.ndarray], bytes]:
    def enc(rgb: np.ndarray) -> bytes:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, level])
        assert ok
        return buf.tobytes()

    return enc


def _cv2_webp(rgb: np.ndarray) -> bytes:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, 101])  # 101: lossless
    assert ok
    return buf.tobytes()


def _pil(fmt: str, **opts: object) -> Callable[[np.ndarray], bytes]:
    def enc(rgb: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt, **opts)
        return buf.getvalue()

    return enc


ENCODERS: dict[str, tuple[Callable[[np.ndarray], bytes], str]] = {
    "cv2 png level 1": (_cv2_png(1), "cv2"),
    "cv2 png level 3": (_cv2_png(3), "cv2"),
    "cv2 png level 6": (_cv2_png(6), "cv2"),
    "PIL png level 1": (_pil("PNG", compress_level=1), "pil"),
    "PIL png default (6)": (_pil("PNG"), "pil"),
    "cv2 webp lossless": (_cv2_webp, "cv2"),
    "PIL webp lossless m0 q0": (_pil("WEBP", lossless=True, method=0, quality=0), "pil"),
    "PIL webp lossless m1 q10": (_pil("WEBP", lossless=True, method=1, quality=10), "pil"),
}


def _decode(data: bytes, how: str) -> np.ndarray:
    if how == "cv2":
        out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert out is not None
        return np.asarray(out)
    img = Image.open(io.BytesIO(data))
    img.load()
    return np.asarray(img)


def _median_s(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    w, h = args.width, args.height
    contents = {
        "photo": scene(w, h, seed=1),
        "smooth": _smooth(w, h),
        "random": np.random.default_rng(2).integers(0, 256, (h, w, 3), dtype=np.uint8),
    }
    raw = w * h * 3
    rows: list[dict[str, object]] = []
    print(f"{w}x{h} RGB, raw {raw / 1e6:.1f} MB, median of {args.runs}")
    print("| content | encoder | MB | % of raw | encode s | decode s |")
    print("|---|---|---|---|---|---|")
    for content, rgb in contents.items():
        for name, (enc, how) in ENCODERS.items():
            runs = 1 if content == "random" else args.runs  # the worst case is about bytes
            enc_s, data = _median_s(lambda e=enc, a=rgb: e(a), runs)  # type: ignore[misc]
            assert isinstance(data, bytes)
            dec_s, pixels = _median_s(lambda d=data, m=how: _decode(d, m), runs)  # type: ignore[misc]
            assert isinstance(pixels, np.ndarray) and pixels.shape[:2] == (h, w)
            row = {
                "content": content,
                "encoder": name,
                "bytes": len(data),
                "ratio_of_raw": round(len(data) / raw, 4),
                "encode_s": round(enc_s, 3),
                "decode_s": round(dec_s, 3),
            }
            rows.append(row)
            print(
                f"| {content} | {name} | {len(data) / 1e6:.1f} | {100 * len(data) / raw:.1f} | "
                f"{enc_s:.2f} | {dec_s:.2f} |",
                flush=True,
            )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "machine": f"{platform.machine()}, {platform.python_version()}",
            "opencv": cv2.__version__,
            "pillow": Image.__version__,  # type: ignore[attr-defined]
            "size": [w, h],
            "runs": args.runs,
            "date": time.strftime("%Y-%m-%d"),
        }
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
