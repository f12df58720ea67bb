"""Image limits that agree (issue 14): the gateway's byte limits follow its pixel limit, and a
worker result refused by an explicit, stricter byte limit is reported as what it is."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from support import gw as img

from gateway.clients import WorkerClients
from gateway.settings import GatewaySettings
from lvi.images import DEFAULT_MAX_PIXELS, max_encoded_bytes
from lvi_client import LviClient, PayloadTooLargeError

from .conftest import gateway_settings

W, H = 64, 48


def test_byte_limits_follow_the_pixel_limit_unless_set() -> None:
    s = GatewaySettings()
    assert s.max_image_pixels == DEFAULT_MAX_PIXELS
    assert s.max_image_bytes == max_encoded_bytes(DEFAULT_MAX_PIXELS)
    assert s.max_body_bytes > s.max_image_bytes  # an upload of any such image fits
    small = GatewaySettings(max_image_pixels=100 * 100)
    assert small.max_image_bytes == max_encoded_bytes(100 * 100)
    explicit = GatewaySettings(max_image_bytes=5000, max_body_bytes=9000)
    assert (explicit.max_image_bytes, explicit.max_body_bytes) == (5000, 9000)


def test_env_pixel_limit_derives_the_byte_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_MAX_IMAGE_PIXELS", "250000")
    monkeypatch.delenv("GATEWAY_MAX_IMAGE_BYTES", raising=False)
    assert GatewaySettings().max_image_bytes == max_encoded_bytes(250_000)


def test_a_result_over_an_explicit_byte_limit_names_the_cause(
    make_gateway: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    big = img.png(noise)  # about 9 KB: over the 4000-byte limit set below
    answer = {
        "image": base64.b64encode(big).decode(),
        "width": W,
        "height": H,
        "method": "telea",
        "mask_area": 100,
        "region": [0, 0, W, H],
    }
    clients = WorkerClients.from_settings(
        gateway_settings("redis://unused"),
        transports={"inpaint": httpx.MockTransport(lambda r: httpx.Response(200, json=answer))},
    )
    tc = make_gateway(clients=clients)
    c = LviClient("http://gateway", "alice-key", http_client=tc)
    s = c.create_session()
    v1 = c.upload_image(s.id, img.png(img.photo(W, H)))
    m = c.upload_mask(s.id, img.mask_png(img.rect_mask(W, H, (10, 10, 20, 20))))
    # The workers' shared limit (LVI_MAX_IMAGE_BYTES), stricter than the pixel limit implies.
    monkeypatch.setenv("LVI_MAX_IMAGE_BYTES", "4000")
    with pytest.raises(PayloadTooLargeError) as e:
        c.remove(s.id, m.mask_id)
    assert e.value.code == "result_too_large" and e.value.param == "inpaint"
    assert "4000" in e.value.message and "LVI_MAX_IMAGE_BYTES" in e.value.message
    assert [v.id for v in c.get_session(s.id).versions] == [v1.id]
