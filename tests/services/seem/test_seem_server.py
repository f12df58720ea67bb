"""The seem worker as a real uvicorn process: tiny SAM + tiny Grounding DINO for every prompt
type and combination, the embedding cache (by its counters), every bad input, and the GrabCut
fallback of the cpu profile on a synthetic scene with ground truth."""

from __future__ import annotations

import base64
import io
import re
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from support.imaging import b64, jpeg_bytes, png_bytes, scene
from support.procs import ProcessFactory, ServerProcess
from support.seem_scenes import iou, textured_scene

W, H = 157, 101  # odd and not square: exercises resize, padding and crop-back


@pytest.fixture(scope="module")
def sam(procs: ProcessFactory) -> ServerProcess:
    """Tiny SAM + tiny Grounding DINO through the real loading path (tiny:* -> from_pretrained)."""
    return procs.lvi("worker", "seem", env={"SEEM_PROFILE": "tiny"})


@pytest.fixture(scope="module")
def grabcut(procs: ProcessFactory, tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    """The cpu profile on a machine without SAM weights (empty HF cache): falls back to GrabCut."""
    hf_home = tmp_path_factory.mktemp("empty-hf-home")
    return procs.lvi("worker", "seem", env={"SEEM_PROFILE": "cpu", "HF_HOME": str(hf_home)})


IMAGE = b64(png_bytes(scene(W, H, seed=3)))


def stroke_png(w: int = W, h: int = H) -> str:
    m = np.zeros((h, w), np.uint8)
    m[40:44, 30:70] = 255
    return b64(png_bytes(m))


def segment(srv: ServerProcess, **kw: Any) -> httpx.Response:
    body = {"image": IMAGE, **kw}
    return httpx.post(srv.url + "/v1/segment", json=body, timeout=60)


def decode_mask(data: str) -> np.ndarray:
    img = Image.open(io.BytesIO(base64.b64decode(data)))
    assert img.format == "PNG" and img.mode in ("L", "1"), (img.format, img.mode)
    return np.asarray(img.convert("L")) >= 128


def check_masks(out: dict[str, Any], w: int = W, h: int = H) -> list[np.ndarray]:
    """Every mask is a full-size single-channel PNG whose bbox and area match its pixels;
    masks come best first."""
    assert (out["width"], out["height"]) == (w, h)
    masks = []
    for m in out["masks"]:
        px = decode_mask(m["mask"])
        assert px.shape == (h, w)
        assert m["area"] == int(px.sum())
        if m["area"]:
            ys, xs = np.nonzero(px)
            assert m["bbox"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        else:
            assert m["bbox"] == [0, 0, 0, 0]
        score = m["score"]
        assert score is None or 0.0 <= score <= 1.0
        assert isinstance(m["label"], str) and m["label"]
        masks.append(px)
    scores = [m["score"] for m in out["masks"] if m["score"] is not None]
    assert scores == sorted(scores, reverse=True)
    return masks


def metric(srv: ServerProcess, name: str) -> float:
    text = httpx.get(srv.url + "/metrics").text
    found = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def assert_envelope(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) == {"type", "message", "code", "param"}
    assert "Traceback" not in r.text
    if code is not None:
        assert err["code"] == code, err
    return err


def test_health_info_and_metrics(sam: ServerProcess) -> None:
    assert httpx.get(sam.url + "/v2/health/ready").status_code == 200
    info = httpx.get(sam.url + "/v1/info").json()
    assert info["backend"] == "sam" and info["profile"] == "tiny"
    assert info["model"].endswith("sam") and info["detector"].endswith("grounding-dino")
    assert set(info["prompts"]) == {"points", "boxes", "stroke", "text", "everything"}
    assert info["cache_size"] == 32
    metrics = httpx.get(sam.url + "/metrics").text
    assert "lvi_seem_embedding_cache_hits_total" in metrics
    assert "lvi_seem_embedding_cache_misses_total" in metrics


COMBOS: list[tuple[str, dict[str, Any], int]] = [
    ("one click", {"points": [[20, 30]]}, 1),
    ("clicks in and out", {"points": [[20, 30], [100, 80]], "labels": [1, 0]}, 1),
    ("one box", {"boxes": [[10, 10, 80, 60]]}, 1),
    ("two boxes", {"boxes": [[10, 10, 80, 60], [90, 20, 150, 95]]}, 2),
    ("box + click inside", {"boxes": [[10, 10, 80, 60]], "points": [[30, 30]]}, 1),
    ("box + click outside", {"boxes": [[10, 10, 80, 60]], "points": [[120, 80]]}, 2),
    ("stroke", {"stroke": "STROKE"}, 1),
    ("stroke + negative click", {"stroke": "STROKE", "points": [[5, 5]], "labels": [0]}, 1),
    ("box + stroke", {"boxes": [[20, 30, 80, 60]], "stroke": "STROKE"}, 1),
    ("click, multimask", {"points": [[20, 30]], "multimask": True}, 3),
    (
        "two boxes, multimask",
        {"boxes": [[10, 10, 80, 60], [90, 20, 150, 95]], "multimask": True},
        6,
    ),
    ("edge coordinates", {"points": [[0, 0], [W, H]], "boxes": [[0, 0, W, H]]}, 1),
]


@pytest.mark.parametrize(("kw", "n"), [(c[1], c[2]) for c in COMBOS], ids=[c[0] for c in COMBOS])
def test_visual_prompts(sam: ServerProcess, kw: dict[str, Any], n: int) -> None:
    kw = {k: (stroke_png() if v == "STROKE" else v) for k, v in kw.items()}
    r = segment(sam, **kw)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["backend"] == "sam"
    check_masks(out)
    assert len(out["masks"]) == n
    assert all(m["label"] == "object" for m in out["masks"])


def test_text_returns_every_instance_with_its_phrase(sam: ServerProcess) -> None:
    # Random weights: with thresholds at 0 every de-duplicated detection comes back.
    r = segment(sam, text="a cat. dog", box_threshold=0.0, text_threshold=0.0)
    assert r.status_code == 200, r.text
    out = r.json()
    check_masks(out)
    assert len(out["masks"]) > 1
    assert {m["label"] for m in out["masks"]} <= {"a cat", "dog"}
    # Text together with clicks, a box and a stroke, merged into one dilated mask.
    r = segment(
        sam,
        text="cat",
        box_threshold=0.0,
        text_threshold=0.0,
        points=[[140, 90]],
        boxes=[[10, 10, 40, 40]],
        stroke=stroke_png(),
        merge=True,
        dilate=2,
    )
    assert r.status_code == 200, r.text
    (merged,) = r.json()["masks"]
    assert set(merged["label"].split(", ")) <= {"cat", "object"}


@pytest.mark.parametrize(("w", "h"), [(128, 128), (300, 7), (5, 200), (1, 1)])
def test_square_thin_and_one_pixel_images(sam: ServerProcess, w: int, h: int) -> None:
    # Square and very thin images once broke the detector's feature pyramid: padded now.
    img = b64(png_bytes(scene(w, h, seed=8)))
    for kw in ({"text": "cat", "box_threshold": 0.0}, {"points": [[w / 2, h / 2]]}):
        r = httpx.post(sam.url + "/v1/segment", json={"image": img, **kw})
        assert r.status_code == 200, r.text
        check_masks(r.json(), w=w, h=h)


def test_text_that_matches_nothing_is_200_with_no_masks(sam: ServerProcess) -> None:
    r = segment(sam, text="a unicorn", box_threshold=1.0)
    assert r.status_code == 200, r.text
    assert r.json()["masks"] == []


def test_everything_mode(sam: ServerProcess) -> None:
    r = segment(sam, everything=True, max_masks=5)
    assert r.status_code == 200, r.text
    out = r.json()
    check_masks(out)
    assert len(out["masks"]) <= 5


def test_dilate_and_erode_grow_and_shrink(sam: ServerProcess) -> None:
    areas = {}
    for name, kw in {"plain": {}, "dilate": {"dilate": 4}, "erode": {"erode": 4}}.items():
        r = segment(sam, boxes=[[10, 10, 80, 60]], **kw)
        assert r.status_code == 200, r.text
        areas[name] = r.json()["masks"][0]["area"]
    assert areas["erode"] <= areas["plain"] <= areas["dilate"]


def test_second_prompt_on_an_image_hits_the_cache(sam: ServerProcess) -> None:
    fresh = b64(png_bytes(scene(96, 64, seed=77)))  # an image no other test sends
    hits0 = metric(sam, "lvi_seem_embedding_cache_hits_total")
    miss0 = metric(sam, "lvi_seem_embedding_cache_misses_total")
    first = httpx.post(sam.url + "/v1/segment", json={"image": fresh, "points": [[10, 10]]})
    assert first.status_code == 200 and first.json()["cache_hit"] is False
    assert metric(sam, "lvi_seem_embedding_cache_misses_total") == miss0 + 1
    for body in ({"points": [[50, 40]]}, {"boxes": [[0, 0, 50, 50]]}):
        r = httpx.post(sam.url + "/v1/segment", json={"image": fresh, **body})
        assert r.status_code == 200 and r.json()["cache_hit"] is True
    assert metric(sam, "lvi_seem_embedding_cache_hits_total") == hits0 + 2
    assert metric(sam, "lvi_seem_embedding_cache_misses_total") == miss0 + 1
    assert metric(sam, "lvi_seem_embedding_cache_items") >= 1


def test_exif_rotated_jpeg_masks_match_the_upright_size(sam: ServerProcess) -> None:
    # Orientation 6: the stored 157x101 pixels are shown (and addressed) as 101x157.
    img = b64(jpeg_bytes(scene(W, H, seed=5), exif_orientation=6))
    r = httpx.post(sam.url + "/v1/segment", json={"image": img, "points": [[90, 150]]})
    assert r.status_code == 200, r.text
    check_masks(r.json(), w=H, h=W)


BAD: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("no prompt", {}, 400, "no_prompt"),
    ("point outside", {"points": [[W + 5, 10]]}, 400, "point_outside_image"),
    ("negative coordinate", {"points": [[-1, 10]]}, 400, "point_outside_image"),
    ("box outside", {"boxes": [[0, 0, W + 1, 10]]}, 400, "box_outside_image"),
    ("box x1 < x0", {"boxes": [[50, 10, 20, 40]]}, 400, "invalid_box"),
    ("labels mismatch", {"points": [[5, 5], [6, 6]], "labels": [1]}, 400, "labels_mismatch"),
    ("stroke wrong size", {"stroke": "SMALL_STROKE"}, 400, "stroke_size_mismatch"),
    ("stroke not single-channel", {"stroke": "RGB_STROKE"}, 400, "invalid_mask"),
    ("empty text", {"text": "   "}, 400, "empty_text"),
    ("corrupt image", {"image": b64(b"\x89PNG\r\n\x1a\nnot really")}, 400, "invalid_image"),
    ("not base64", {"image": "%%%"}, 400, "invalid_base64"),
    ("label not 0/1", {"points": [[5, 5]], "labels": [2]}, 422, None),
    ("box of 3 numbers", {"boxes": [[1, 2, 3]]}, 422, None),
    ("unknown field", {"points": [[5, 5]], "clicks": []}, 422, None),
    ("dilate too big", {"points": [[5, 5]], "dilate": 10_000}, 422, None),
]


@pytest.mark.parametrize(("kw", "status", "code"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_gets_the_envelope(
    sam: ServerProcess, kw: dict[str, Any], status: int, code: str | None
) -> None:
    if kw.get("stroke") == "SMALL_STROKE":
        kw = {**kw, "stroke": stroke_png(W - 1, H)}
    elif kw.get("stroke") == "RGB_STROKE":
        kw = {**kw, "stroke": b64(png_bytes(scene(W, H)))}
    r = httpx.post(
        sam.url + "/v1/segment",
        json={"image": IMAGE, **kw},
        headers={"X-Request-ID": "seem-bad-1"},
    )
    assert_envelope(r, status, code)
    assert r.headers["x-request-id"] == "seem-bad-1"


def test_grabcut_fallback_segments_a_real_scene(grabcut: ServerProcess) -> None:
    info = httpx.get(grabcut.url + "/v1/info").json()
    assert info["backend"] == "grabcut" and info["profile"] == "cpu"
    assert info["prompts"] == ["points", "boxes", "stroke"]
    rgb, gt, box = textured_scene(6)
    img = b64(png_bytes(rgb))
    r = httpx.post(grabcut.url + "/v1/segment", json={"image": img, "boxes": [list(box)]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["backend"] == "grabcut" and out["cache_hit"] is False
    assert out["masks"][0]["score"] is None  # GrabCut has no confidence of its own
    (mask,) = check_masks(out, w=rgb.shape[1], h=rgb.shape[0])
    assert iou(mask, gt) >= 0.9
    # Two boxes, a click and a stroke: one mask per box, plus one for the free click.
    stroke = np.zeros(gt.shape, np.uint8)
    stroke[5:8, 5:40] = 255
    r = httpx.post(
        grabcut.url + "/v1/segment",
        json={
            "image": img,
            "boxes": [list(box), [0, 0, 60, 60]],
            "points": [[300, 230]],
            "stroke": b64(png_bytes(stroke)),
            "multimask": True,
        },
    )
    assert r.status_code == 200, r.text
    assert len(check_masks(r.json(), w=rgb.shape[1], h=rgb.shape[0])) == 3


@pytest.mark.parametrize(
    ("kw", "code"),
    [({"text": "a cat"}, "text_unsupported"), ({"everything": True}, "everything_unsupported")],
)
def test_grabcut_refuses_text_and_everything_clearly(
    grabcut: ServerProcess, kw: dict[str, Any], code: str
) -> None:
    err = assert_envelope(segment(grabcut, **kw), 400, code)
    assert "SAM" in err["message"]


def test_schemathesis_finds_no_server_errors(sam: ServerProcess) -> None:
    from support.fuzz import schemathesis_run

    result = schemathesis_run(sam.url, max_examples=30, include_path_regex="/v1/segment")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "generated" in result.stdout
