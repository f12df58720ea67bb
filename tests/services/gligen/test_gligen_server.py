"""The gligen worker as a real uvicorn process with the tiny GLIGEN checkpoints: generation and
grounded inpainting, seeds, unchanged pixels outside the edit, progress streaming, cancellation
by disconnect and by deadline, and every bad input."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.imaging import b64, decode, png_bytes, rect_mask, scene
from support.procs import ProcessFactory, ServerProcess

from lvi.contracts.gligen import GenerateResponse, Progress, Started, parse_event

SSE = {"Accept": "text/event-stream"}
MAX_SIDE = 512
NATIVE = 512  # the tiny checkpoints are laid out like SD-1.4: 512 px, 8x VAE


@pytest.fixture(scope="module")
def gligen(procs: ProcessFactory) -> ServerProcess:
    """Both tiny checkpoints through the real loading path (tiny:... -> from_pretrained).

    Pinned to the CPU even where a GPU exists: the cancellation tests need runs that last
    longer than a few round trips, and a GPU finishes 150 tiny steps first (the CUDA path is
    checked by bench/gligen_steps.py --device cuda; see docs/BENCHMARKS.md).
    """
    return procs.lvi(
        "worker",
        "gligen",
        env={
            "GLIGEN_PROFILE": "tiny",
            "GLIGEN_DEVICE": "cpu",
            "GLIGEN_MAX_SIDE": str(MAX_SIDE),
            "GLIGEN_DEFAULT_STEPS": "2",
            "GLIGEN_WARMUP_STEPS": "1",
        },
        timeout=180,
    )


def post(srv: ServerProcess, body: dict[str, Any], **kw: Any) -> httpx.Response:
    return httpx.post(srv.url + "/v1/generate", json=body, timeout=120, **kw)


def assert_envelope(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) == {"type", "message", "code", "param"}
    assert "Traceback" not in r.text
    return err


def events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a server-sent event stream."""
    event, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def counters(srv: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(srv.url + "/metrics").text
    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.name.startswith("lvi_gligen"):
            for s in fam.samples:
                if s.name.endswith("_total"):
                    out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def steps_done(srv: ServerProcess, mode: str = "generate") -> float:
    return counters(srv).get(("lvi_gligen_denoising_steps_total", (("mode", mode),)), 0.0)


def runs(srv: ServerProcess, outcome: str, mode: str = "generate") -> float:
    key = ("lvi_gligen_runs_total", (("mode", mode), ("outcome", outcome)))
    return counters(srv).get(key, 0.0)


def wait_for_run_end(srv: ServerProcess, outcome: str, before: float) -> None:
    """Poll until the worker counts one more run with ``outcome`` (a bound, not a timing test)."""
    deadline = time.monotonic() + 120
    while runs(srv, outcome) <= before:
        assert time.monotonic() < deadline, f"no {outcome} run recorded"
        time.sleep(0.1)


# -- generation -----------------------------------------------------------------------------


def test_health_info_and_metrics(gligen: ServerProcess) -> None:
    assert httpx.get(gligen.url + "/v2/health/ready").status_code == 200
    info = httpx.get(gligen.url + "/v1/info").json()
    assert info["modes"] == ["generate", "inpaint"]
    assert "gligen-generation" in info["model"]
    assert "gligen-inpainting" in info["inpaint_model"]
    assert info["native_size"] == {"generate": NATIVE, "inpaint": NATIVE}
    assert info["dtype"] == "float32" and info["scheduler"] == "dpm++"
    # The warm-up ran both models through the same counters.
    assert steps_done(gligen, "generate") >= 1 and steps_done(gligen, "inpaint") >= 1


def test_generate_with_boxes_at_requested_size(gligen: ServerProcess) -> None:
    body = {
        "prompt": "a cat on a sofa",
        "phrases": ["a cat", "a hat"],
        "boxes": [[0.1, 0.2, 0.6, 0.9], [0.5, 0.0, 0.9, 0.3]],
        "width": 96,
        "height": 64,
        "steps": 3,
    }
    r = post(gligen, body)
    assert r.status_code == 200, r.text
    out = GenerateResponse.model_validate(r.json())
    assert (out.width, out.height, out.steps, out.mode) == (96, 64, 3, "generate")
    assert out.scheduled_sampling_beta == 0.3 and out.region is None
    assert 0 <= out.seed < 2**32
    assert out.image.format == "PNG" and out.image.size == (96, 64)
    assert decode(r.json()["image"]).shape == (64, 96, 3)


def test_generate_without_boxes_defaults_to_native_size(gligen: ServerProcess) -> None:
    r = post(gligen, {"prompt": "a tree"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["width"], out["height"], out["steps"]) == (NATIVE, NATIVE, 2)  # DEFAULT_STEPS


def test_same_seed_same_bytes(gligen: ServerProcess) -> None:
    body = {"prompt": "a dog", "phrases": ["a dog"], "boxes": [[0.2, 0.2, 0.8, 0.8]]}
    body |= {"seed": 1234, "steps": 2, "guidance_scale": 3.0, "negative_prompt": "blurry"}
    a, b = post(gligen, body), post(gligen, body)
    assert a.status_code == b.status_code == 200
    assert a.json()["seed"] == b.json()["seed"] == 1234
    assert a.json()["image"] == b.json()["image"]
    c = post(gligen, body | {"seed": 1235})
    assert c.json()["image"] != a.json()["image"]


# -- inpainting -----------------------------------------------------------------------------


def test_inpaint_changes_only_the_boxes_at_full_resolution(gligen: ServerProcess) -> None:
    w, h = 203, 131  # odd, non-square, far from 512
    img = scene(w, h, seed=3)
    boxes = [[0.10, 0.15, 0.35, 0.60], [0.55, 0.40, 0.80, 0.95]]
    body = {"image": b64(png_bytes(img)), "phrases": ["a cat", "a hat"], "boxes": boxes}
    r = post(gligen, body | {"seed": 5, "steps": 2})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["width"], out["height"], out["mode"]) == (w, h, "inpaint")
    assert out["scheduled_sampling_beta"] == 1.0  # forced in the original demo; our default
    got = decode(out["image"])
    assert got.shape == img.shape
    inside = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in boxes:
        inside[int(y0 * h) : int(np.ceil(y1 * h)), int(x0 * w) : int(np.ceil(x1 * w))] = True
    np.testing.assert_array_equal(got[~inside], img[~inside])
    assert not np.array_equal(got[inside], img[inside])
    rx0, ry0, rx1, ry1 = out["region"]
    assert (rx0, ry0) == (int(0.10 * w), int(0.15 * h))
    assert (rx1, ry1) == (int(np.ceil(0.80 * w)), int(np.ceil(0.95 * h)))
    cx0, cy0, cx1, cy1 = out["crop"]
    assert cx1 - cx0 == cy1 - cy0  # the model saw a square
    # Same seed, same bytes for inpainting too (its noise also comes from the global RNG).
    again = post(gligen, body | {"seed": 5, "steps": 2})
    assert again.json()["image"] == out["image"]


def test_inpaint_mask_restricts_the_change_and_alpha_is_kept(gligen: ServerProcess) -> None:
    w, h = 160, 120
    rgb = scene(w, h, seed=4)
    alpha = np.full((h, w), 200, np.uint8)
    alpha[:10] = 30
    rgba = np.dstack([rgb, alpha])
    mask = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    mask[(xx - 60) ** 2 + (yy - 60) ** 2 < 25**2] = 255  # a disc inside the box
    body = {
        "image": b64(png_bytes(rgba)),
        "mask": b64(png_bytes(mask)),
        "phrases": ["a ball"],
        "boxes": [[20 / w, 20 / h, 100 / w, 100 / h]],
        "steps": 2,
        "scheduled_sampling_beta": 0.5,
    }
    r = post(gligen, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["scheduled_sampling_beta"] == 0.5
    got = decode(out["image"], "RGBA")
    inside = mask > 0
    np.testing.assert_array_equal(got[..., 3], alpha)  # alpha is never touched
    np.testing.assert_array_equal(got[~inside], rgba[~inside])
    assert not np.array_equal(got[inside], rgba[inside])
    assert out["region"] == [36, 36, 85, 85]  # the disc's bounding box


def test_inpaint_large_image_small_edit_runs_on_a_crop(gligen: ServerProcess) -> None:
    w, h = 640, 360
    img = scene(w, h, seed=6)
    box = [300 / w, 100 / h, 320 / w, 124 / h]  # 20x24 px
    r = post(gligen, {"image": b64(png_bytes(img)), "phrases": ["a bird"], "boxes": [box]})
    assert r.status_code == 200, r.text
    out = r.json()
    x0, y0, x1, y1 = out["crop"]
    assert x1 - x0 == y1 - y0 == NATIVE  # the native size: a small edit at 1:1 scale
    assert x0 <= 300 and x1 >= 320 and y0 <= 100 and y1 >= 124
    got = decode(out["image"])
    outside = rect_mask(w, h, (300, 100, 320, 124)) == 0
    np.testing.assert_array_equal(got[outside], img[outside])


# -- streaming, cancellation, deadlines -----------------------------------------------------


def test_stream_progress_events_equal_steps(gligen: ServerProcess) -> None:
    steps = 5
    body = {"prompt": "a car", "phrases": ["a car"], "boxes": [[0.1, 0.1, 0.9, 0.5]]}
    got: list[Any] = []
    with httpx.stream(
        "POST",
        gligen.url + "/v1/generate",
        json=body | {"steps": steps, "seed": 9},
        headers=SSE,
        timeout=120,
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        kinds = []
        for event, data in events(r.iter_lines()):
            kinds.append(event)
            got.append(parse_event(event, data))
    assert kinds == ["start"] + ["progress"] * steps + ["result"]
    start, *progress, result = got
    assert isinstance(start, Started) and start.total == steps and start.seed == 9
    assert [p.step for p in progress] == list(range(1, steps + 1))
    assert all(isinstance(p, Progress) and p.total == steps for p in progress)
    assert isinstance(result, GenerateResponse) and result.steps == steps
    # The streamed result is the same image as the plain JSON reply for the same seed.
    plain = post(gligen, body | {"steps": steps, "seed": 9})
    assert plain.json()["image"] == base64.b64encode(result.image.data).decode()


def test_stream_inpainting(gligen: ServerProcess) -> None:
    img = scene(72, 88, seed=2)
    body = {"image": b64(png_bytes(img)), "phrases": ["a cup"], "boxes": [[0.2, 0.2, 0.5, 0.5]]}
    with httpx.stream(
        "POST", gligen.url + "/v1/generate", json=body | {"steps": 3}, headers=SSE, timeout=120
    ) as r:
        kinds = [event for event, _ in events(r.iter_lines())]
    assert kinds == ["start", "progress", "progress", "progress", "result"]


def test_disconnect_stops_the_run_early(gligen: ServerProcess) -> None:
    total = 150
    before_steps = steps_done(gligen)
    before_cancelled = runs(gligen, "cancelled")
    before_completed = runs(gligen, "completed")
    # Native size: with the 8x VAE a step is milliseconds at 128 px, so 150 steps could end
    # before the disconnect is noticed.
    body = {"prompt": "a boat", "steps": total, "width": MAX_SIDE, "height": MAX_SIDE}
    seen = 0
    with (
        httpx.Client(timeout=120) as client,
        client.stream("POST", gligen.url + "/v1/generate", json=body, headers=SSE) as r,
    ):
        assert r.status_code == 200
        for event, _ in events(r.iter_lines()):
            if event == "progress":
                seen += 1
                if seen == 2:
                    break  # leaving both blocks closes the connection: a disconnect
    wait_for_run_end(gligen, "cancelled", before_cancelled)
    executed = steps_done(gligen) - before_steps
    assert 2 <= executed < total
    assert runs(gligen, "completed") == before_completed


def test_deadline_stops_the_run(gligen: ServerProcess) -> None:
    total = 150
    before_steps = steps_done(gligen)
    before_cancelled = runs(gligen, "cancelled")
    body = {"prompt": "a boat", "steps": total, "width": MAX_SIDE, "height": MAX_SIDE}
    r = post(gligen, body, headers={"X-Request-Timeout": "1"})
    err = assert_envelope(r, 504)
    assert err["code"] == "deadline_exceeded"
    wait_for_run_end(gligen, "cancelled", before_cancelled)
    assert steps_done(gligen) - before_steps < total
    # The slot is free again: the next request is served.
    assert post(gligen, {"prompt": "a cat", "steps": 1}).status_code == 200


def test_deadline_in_a_stream_ends_with_an_error_event(gligen: ServerProcess) -> None:
    before_cancelled = runs(gligen, "cancelled")
    body = {"prompt": "a boat", "steps": 150, "width": MAX_SIDE, "height": MAX_SIDE}
    headers = SSE | {"X-Request-Timeout": "2"}
    with httpx.stream(
        "POST", gligen.url + "/v1/generate", json=body, headers=headers, timeout=120
    ) as r:
        assert r.status_code == 200
        last = list(events(r.iter_lines()))[-1]
    assert last[0] == "error"
    assert json.loads(last[1])["error"]["code"] == "deadline_exceeded"
    wait_for_run_end(gligen, "cancelled", before_cancelled)


# -- bad input ------------------------------------------------------------------------------

IMG = b64(png_bytes(scene(80, 48, seed=1)))
BOX = [0.1, 0.1, 0.5, 0.5]
TRUNCATED = b64(png_bytes(scene(80, 48, seed=1))[:200])

BAD: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("counts differ", {"prompt": "x", "phrases": ["a", "b"], "boxes": [BOX]}, 422, None),
    ("box outside", {"prompt": "x", "phrases": ["a"], "boxes": [[0.1, 0.1, 1.2, 0.5]]}, 422, None),
    ("box negative", {"prompt": "x", "phrases": ["a"], "boxes": [[-0.1, 0, 0.5, 0.5]]}, 422, None),
    ("zero area", {"prompt": "x", "phrases": ["a"], "boxes": [[0.3, 0.1, 0.3, 0.5]]}, 422, None),
    ("inverted box", {"prompt": "x", "phrases": ["a"], "boxes": [[0.5, 0.5, 0.1, 0.9]]}, 422, None),
    ("box of 3", {"prompt": "x", "phrases": ["a"], "boxes": [[0.1, 0.1, 0.5]]}, 422, None),
    ("too many boxes", {"prompt": "x", "phrases": ["a"] * 31, "boxes": [BOX] * 31}, 422, None),
    ("width not /8", {"prompt": "x", "width": 100}, 422, None),
    ("height over contract", {"prompt": "x", "height": 4096}, 422, None),
    ("width over worker limit", {"prompt": "x", "width": MAX_SIDE + 8}, 422, "size_too_large"),
    ("width too small", {"prompt": "x", "width": 8}, 422, None),
    ("steps zero", {"prompt": "x", "steps": 0}, 422, None),
    ("steps over", {"prompt": "x", "steps": 151}, 422, None),
    ("guidance negative", {"prompt": "x", "guidance_scale": -1}, 422, None),
    ("beta over 1", {"prompt": "x", "scheduled_sampling_beta": 1.5}, 422, None),
    ("seed negative", {"prompt": "x", "seed": -1}, 422, None),
    ("empty phrase", {"prompt": "x", "phrases": [""], "boxes": [BOX]}, 422, None),
    ("phrase too many tokens", {"prompt": "x", "phrases": ["!" * 200], "boxes": [BOX]}, 422,
     "phrase_too_long"),
    ("nothing to draw", {"prompt": "  "}, 422, None),
    ("unknown field", {"prompt": "x", "sampler": "ddim"}, 422, None),
    ("mask without image", {"prompt": "x", "mask": b64(png_bytes(np.zeros((8, 8), np.uint8)))},
     422, None),
    ("inpaint without boxes", {"image": IMG}, 422, None),
    ("inpaint with other width", {"image": IMG, "phrases": ["a"], "boxes": [BOX], "width": 64},
     422, None),
    ("mask size mismatch",
     {"image": IMG, "mask": b64(png_bytes(np.zeros((40, 40), np.uint8))), "phrases": ["a"],
      "boxes": [BOX]}, 422, None),
    ("mask misses the boxes",
     {"image": IMG, "mask": b64(png_bytes(rect_mask(80, 48, (70, 40, 80, 48)))),
      "phrases": ["a"], "boxes": [BOX]}, 400, "empty_edit_region"),
    ("mask not single-channel",
     {"image": IMG, "mask": IMG, "phrases": ["a"], "boxes": [BOX]}, 400, "invalid_mask"),
    ("corrupt image", {"image": b64(b"\x89PNG\r\n\x1a\nnot really"), "phrases": ["a"],
                       "boxes": [BOX]}, 400, "invalid_image"),
    ("truncated image", {"image": TRUNCATED, "phrases": ["a"], "boxes": [BOX]}, 400,
     "truncated_image"),
    ("not base64", {"image": "%%%", "phrases": ["a"], "boxes": [BOX]}, 400, "invalid_base64"),
    ("not an image format we take",
     {"image": b64(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"), "phrases": ["a"], "boxes": [BOX]},
     None, None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "status", "code"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_the_envelope(
    gligen: ServerProcess, name: str, body: dict[str, Any], status: int | None, code: str | None
) -> None:
    r = post(gligen, body)
    assert 400 <= r.status_code < 500, r.text
    err = assert_envelope(r, status or r.status_code)
    if code is not None:
        assert err["code"] == code


@pytest.mark.parametrize("name", ["truncated image", "width over worker limit", "counts differ"])
def test_bad_input_with_a_stream_request_is_a_plain_4xx(gligen: ServerProcess, name: str) -> None:
    body = next(b for n, b, _, _ in BAD if n == name)
    r = post(gligen, body, headers=SSE)
    assert 400 <= r.status_code < 500 and r.headers["content-type"].startswith("application/json")
    assert_envelope(r, r.status_code)


def test_not_json_is_422(gligen: ServerProcess) -> None:
    r = httpx.post(
        gligen.url + "/v1/generate", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert_envelope(r, 422)
