"""The inpaint worker as a real uvicorn process: health, both backends, the unchanged-pixels
property, compositing, admission control, deadlines and every bad input."""

from __future__ import annotations

import concurrent.futures as cf

import httpx
import numpy as np
import pytest
from support.imaging import b64, decode, jpeg_bytes, png_bytes, rect_mask, scene
from support.procs import ProcessFactory, ServerProcess


@pytest.fixture(scope="module")
def lama(procs: ProcessFactory) -> ServerProcess:
    """Tiny TorchScript LaMa through the real loading path (tiny:lama -> torch.jit.load)."""
    return procs.lvi("worker", "inpaint", env={"INPAINT_PROFILE": "tiny"})


@pytest.fixture(scope="module")
def opencv(procs: ProcessFactory) -> ServerProcess:
    return procs.lvi("worker", "inpaint", env={"INPAINT_PROFILE": "cpu", "INPAINT_MAX_QUEUE": "1"})


def body(img: np.ndarray, mask: np.ndarray, **kw: object) -> dict[str, object]:
    return {"image": b64(png_bytes(img)), "mask": b64(png_bytes(mask)), **kw}


def assert_envelope(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"type", "message", "code", "param"}
    assert "Traceback" not in r.text
    return err


def test_health_ready_info_metrics(lama: ServerProcess) -> None:
    assert httpx.get(lama.url + "/v2/health/live").json() == {"status": "live"}
    assert httpx.get(lama.url + "/v2/health/ready").status_code == 200
    info = httpx.get(lama.url + "/v1/info").json()
    assert info["backend"] == "lama" and info["model"].endswith("tiny-lama.pt")
    assert info["max_concurrency"] == 1 and info["profile"] == "tiny"
    metrics = httpx.get(lama.url + "/metrics").text
    assert "lvi_model_load_seconds" in metrics and "lvi_queue_depth" in metrics


@pytest.mark.parametrize("server", ["lama", "opencv"])
@pytest.mark.parametrize("method", ["auto", "telea", "ns"])
def test_only_dilated_mask_changes_at_full_resolution(
    server: str, method: str, request: pytest.FixtureRequest
) -> None:
    srv: ServerProcess = request.getfixturevalue(server)
    w, h = 301, 173  # odd, non-square: exercises padding to multiples of 8
    img = scene(w, h, seed=1)
    mask = rect_mask(w, h, (100, 60, 140, 90))
    r = httpx.post(srv.url + "/v1/inpaint", json=body(img, mask, dilate=4, method=method))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["width"], out["height"]) == (w, h)
    assert out["method"] == (
        "lama" if server == "lama" and method == "auto" else "telea" if method == "auto" else method
    )
    got = decode(out["image"])
    assert got.shape == img.shape
    # Everything outside the dilated mask is bit-identical; inside, something was filled.
    from lvi.masks import dilate

    grown = dilate(mask > 0, 4)
    assert out["mask_area"] == int(grown.sum())
    np.testing.assert_array_equal(got[~grown], img[~grown])
    assert not np.array_equal(got[grown], img[grown])
    x0, y0, x1, y1 = out["region"]
    assert 0 <= x0 < 96 and 0 <= y0 < 56 and x1 > 144 and y1 > 94


def test_lama_method_on_opencv_backend_is_400(opencv: ServerProcess) -> None:
    img = scene(64, 64)
    r = httpx.post(
        opencv.url + "/v1/inpaint", json=body(img, rect_mask(64, 64, (8, 8, 20, 20)), method="lama")
    )
    assert assert_envelope(r, 400)["param"] == "method"


def test_empty_mask_returns_the_same_bytes(lama: ServerProcess) -> None:
    img = scene(50, 40)
    data = png_bytes(img)
    r = httpx.post(
        lama.url + "/v1/inpaint",
        json={"image": b64(data), "mask": b64(png_bytes(np.zeros((40, 50), np.uint8)))},
    )
    assert r.status_code == 200
    assert r.json()["image"] == b64(data) and r.json()["method"] == "none"


def test_jpeg_and_rgba_inputs_keep_their_pixels(lama: ServerProcess) -> None:
    img = scene(80, 60)
    mask = rect_mask(80, 60, (30, 20, 40, 30))
    r = httpx.post(
        lama.url + "/v1/inpaint", json={"image": b64(jpeg_bytes(img)), "mask": b64(png_bytes(mask))}
    )
    assert r.status_code == 200
    original = decode(jpeg_bytes(img))
    np.testing.assert_array_equal(decode(r.json()["image"])[mask == 0], original[mask == 0])
    rgba = np.dstack([img, np.full((60, 80), 200, np.uint8)])
    r = httpx.post(lama.url + "/v1/inpaint", json=body(rgba, mask))
    assert r.status_code == 200
    got = decode(r.json()["image"], "RGBA")
    assert (got[..., 3] == 200).all()
    np.testing.assert_array_equal(got[mask == 0], rgba[mask == 0])


def test_large_image_is_processed_around_the_mask(lama: ServerProcess) -> None:
    w, h = 2400, 1500
    img = scene(w, h, seed=3)
    mask = rect_mask(w, h, (2000, 1200, 2100, 1300))
    r = httpx.post(lama.url + "/v1/inpaint", json=body(img, mask), timeout=60)
    assert r.status_code == 200
    out = r.json()
    x0, y0, x1, y1 = out["region"]
    assert (x1 - x0) < w / 2 and (y1 - y0) < h / 2  # a crop, not the whole image
    got = decode(out["image"])
    assert got.shape == (h, w, 3)
    np.testing.assert_array_equal(got[mask == 0], img[mask == 0])


def test_composite_moves_object_pixels(opencv: ServerProcess) -> None:
    w, h = 120, 90
    src = scene(w, h, seed=4)
    target = np.full((h, w, 3), 9, np.uint8)
    mask = rect_mask(w, h, (10, 10, 30, 25))
    r = httpx.post(
        opencv.url + "/v1/composite",
        json={
            "image": b64(png_bytes(target)),
            "source": b64(png_bytes(src)),
            "mask": b64(png_bytes(mask)),
            "dx": 50,
            "dy": 40,
            "feather": 0,
        },
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["bbox"] == [60, 50, 80, 65]
    got = decode(out["image"])
    np.testing.assert_array_equal(got[50:65, 60:80], src[10:25, 10:30])
    outside = np.ones((h, w), bool)
    outside[50:65, 60:80] = False
    assert (got[outside] == 9).all()
    # Moved entirely out of the frame: nothing pasted, no bbox.
    r = httpx.post(
        opencv.url + "/v1/composite",
        json={
            "image": b64(png_bytes(target)),
            "source": b64(png_bytes(src)),
            "mask": b64(png_bytes(mask)),
            "dx": 500,
            "dy": 0,
        },
    )
    assert r.status_code == 200 and r.json()["bbox"] is None


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("corrupt", 400),
        ("truncated", 400),
        ("bmp", 415),
        ("mask_size", 422),
        ("mask_rgb", 400),
        ("negative_dilate", 422),
        ("unknown_method", 422),
        ("missing_mask", 422),
        ("not_json", 422),
        ("wrong_type", 422),
    ],
)
def test_bad_input_gets_the_envelope(opencv: ServerProcess, case: str, status: int) -> None:
    import io

    from PIL import Image

    img = scene(64, 48)
    mask = rect_mask(64, 48, (5, 5, 20, 20))
    good = body(img, mask)
    payload: object = dict(good)
    if case == "corrupt":
        payload = {**good, "image": b64(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)}
    elif case == "truncated":
        payload = {**good, "image": b64(png_bytes(img)[:200])}
    elif case == "bmp":
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "BMP")
        payload = {**good, "image": b64(buf.getvalue())}
    elif case == "mask_size":
        payload = {**good, "mask": b64(png_bytes(rect_mask(10, 10, (1, 1, 3, 3))))}
    elif case == "mask_rgb":
        payload = {**good, "mask": b64(png_bytes(img))}
    elif case == "negative_dilate":
        payload = {**good, "dilate": -3}
    elif case == "unknown_method":
        payload = {**good, "method": "magic"}
    elif case == "missing_mask":
        payload = {"image": good["image"]}
    elif case == "wrong_type":
        payload = {**good, "dilate": "lots"}
    if case == "not_json":
        r = httpx.post(
            opencv.url + "/v1/inpaint",
            content=b"{nope",
            headers={"content-type": "application/json"},
        )
    else:
        r = httpx.post(opencv.url + "/v1/inpaint", json=payload)
    assert_envelope(r, status)


def test_oversized_body_is_413(procs: ProcessFactory) -> None:
    srv = procs.lvi(
        "worker",
        "inpaint",
        env={
            "INPAINT_PROFILE": "cpu",
            "INPAINT_MAX_BODY_BYTES": "200000",
            "LVI_MAX_IMAGE_BYTES": "50000",
        },
    )
    r = httpx.post(
        srv.url + "/v1/inpaint",
        content=b"x" * 300_000,
        headers={"content-type": "application/json"},
    )
    assert_envelope(r, 413)
    img = scene(200, 200)  # ~100 KB of PNG: under the body limit, over the image limit
    r = httpx.post(srv.url + "/v1/inpaint", json=body(img, rect_mask(200, 200, (1, 1, 9, 9))))
    assert_envelope(r, 413)
    srv.stop()


def test_deadline_gives_504_and_the_worker_recovers(opencv: ServerProcess) -> None:
    w, h = 2048, 2048
    img = scene(w, h, seed=5)
    mask = rect_mask(w, h, (200, 200, 1800, 1800))
    r = httpx.post(
        opencv.url + "/v1/inpaint",
        json=body(img, mask, method="ns"),
        headers={"X-Request-Timeout": "0.05", "X-Request-ID": "deadline-test"},
        timeout=60,
    )
    assert_envelope(r, 504)
    assert r.headers["x-request-id"] == "deadline-test"
    small = scene(32, 32)
    ok = httpx.post(
        opencv.url + "/v1/inpaint", json=body(small, rect_mask(32, 32, (4, 4, 8, 8))), timeout=60
    )
    assert ok.status_code == 200
    bad = httpx.post(
        opencv.url + "/v1/inpaint",
        json=body(small, rect_mask(32, 32, (4, 4, 8, 8))),
        headers={"X-Request-Timeout": "soon"},
    )
    assert_envelope(bad, 400)


def test_burst_beyond_the_queue_gets_429_and_admitted_requests_complete(
    opencv: ServerProcess,
) -> None:
    w, h = 1536, 1536
    img = scene(w, h, seed=6)
    payload = body(img, rect_mask(w, h, (100, 100, 1400, 1400)), method="ns")

    def call(_: int) -> httpx.Response:
        return httpx.post(opencv.url + "/v1/inpaint", json=payload, timeout=120)

    with cf.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(call, range(8)))
    codes = sorted(r.status_code for r in responses)
    assert set(codes) <= {200, 429}, codes
    assert codes.count(429) >= 1 and codes.count(200) >= 2  # 1 running + 1 queued at least
    for r in responses:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            assert_envelope(r, 429)
    metrics = httpx.get(opencv.url + "/metrics").text
    assert 'lvi_rejected_total{reason="queue_full"}' in metrics
