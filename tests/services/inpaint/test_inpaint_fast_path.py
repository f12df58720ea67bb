"""The inpaint backend's fast path (one OpenCV decode, a dilation window, in-place paste, BGR
encode) against the straightforward algorithm it replaced: the same pixels, area and region."""

from __future__ import annotations

import numpy as np
import pytest
from support.imaging import b64, decode, png_bytes, scene

from lvi.contracts.inpaint import InpaintRequest
from lvi.masks import dilate, join_alpha, mask_bbox, split_alpha
from lvi.worker import Job
from services.inpaint.backend import InpaintBackend, context_region, dilated_mask
from services.inpaint.settings import InpaintSettings


def reference(backend: InpaintBackend, req: InpaintRequest) -> tuple[np.ndarray, int, list[int]]:
    """Full-image dilation, RGB decode and a copy: the algorithm before the fast path."""
    import cv2

    mask = dilate(req.mask.to_bool(), req.dilate)
    bbox = mask_bbox(mask)
    assert bbox is not None
    rgb, alpha = split_alpha(req.image)
    s = backend.settings
    x0, y0, x1, y1 = context_region(bbox, (rgb.shape[1], rgb.shape[0]), s.context, s.min_context)
    crop_mask = mask[y0:y1, x0:x1]
    flag = cv2.INPAINT_TELEA if req.method in ("auto", "telea") else cv2.INPAINT_NS
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2BGR)
    filled = cv2.cvtColor(
        cv2.inpaint(bgr, crop_mask.astype(np.uint8) * 255, s.radius, flag), cv2.COLOR_BGR2RGB
    )
    out = rgb.copy()
    out[y0:y1, x0:x1][crop_mask] = filled[crop_mask]
    return join_alpha(out, alpha), int(mask.sum()), [x0, y0, x1, y1]


@pytest.mark.parametrize("seed", range(12))
def test_fast_path_matches_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    w, h = (int(v) for v in rng.integers(20, 260, 2))
    img = scene(w, h, seed=seed)
    if seed % 3 == 0:
        img = np.dstack([img, rng.integers(0, 256, (h, w), np.uint8)])
    mask = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 4))):  # blobs, some touching the border
        x, y = int(rng.integers(-10, w)), int(rng.integers(-10, h))
        mask[max(0, y) : y + int(rng.integers(1, 40)), max(0, x) : x + int(rng.integers(1, 40))] = (
            int(rng.choice([128, 255]))
        )
    mask[rng.random((h, w)) < 0.01] = 127  # just below "inside": must stay outside
    req = InpaintRequest.model_validate(
        {
            "image": b64(png_bytes(img)),
            "mask": b64(png_bytes(mask)),
            "dilate": int(rng.choice([0, 1, 3, 17, 80])),
            "method": str(rng.choice(["telea", "ns"])),
        }
    )
    backend = InpaintBackend(InpaintSettings(profile="cpu"))
    if not (mask >= 128).any():
        assert backend.inpaint(req, Job()).method == "none"
        return
    out = backend.inpaint(req, Job())
    want, area, region = reference(backend, req)
    got = decode(out.image.data, "RGBA" if img.shape[2] == 4 else "RGB")
    np.testing.assert_array_equal(got, want)
    assert (out.mask_area, out.region) == (area, region)


@pytest.mark.parametrize("radius", [0, 1, 5, 40])
def test_dilated_mask_is_the_full_image_dilation(radius: int) -> None:
    rng = np.random.default_rng(radius)
    grey = np.zeros((90, 120), np.uint8)
    grey[0:7, 100:120] = 200  # in a corner
    grey[40:50, 30:33] = 128
    grey[rng.random(grey.shape) < 0.02] = 127
    found = dilated_mask(grey, radius)
    assert found is not None
    (x0, y0, x1, y1), inside = found
    full = dilate(grey >= 128, radius)
    assert (x0, y0, x1, y1) == mask_bbox(full)
    np.testing.assert_array_equal(inside, full[y0:y1, x0:x1])
    assert dilated_mask(np.full((9, 9), 127, np.uint8), radius) is None
