"""The gateway's own behaviour through the SDK: auth, isolation, versions, undo/redo,
If-Match, idempotency, uploads and their limits, masks, and remove with the real inpaint
worker (pixels outside the dilated mask are unchanged)."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient
from support import gw as img

from lvi_client import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    LviClient,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)

W, H = 96, 64


def _session_with_image(client: LviClient) -> tuple[str, int]:
    s = client.create_session()
    v = client.upload_image(s.id, img.png(img.photo(W, H)))
    return s.id, v.id


def test_auth_required_and_keys_checked(gw: TestClient) -> None:
    r = gw.post("/v1/sessions")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_api_key"
    assert r.headers["www-authenticate"] == "Bearer"
    assert gw.post("/v1/sessions", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert gw.post("/v1/sessions", headers={"Authorization": "Basic alice-key"}).status_code == 401
    with pytest.raises(AuthenticationError):
        LviClient("http://gateway", "wrong", http_client=gw).create_session()
    # Health and readiness need no key.
    assert gw.get("/healthz").status_code == 200
    assert gw.get("/readyz").json()["redis"] == "ok"


def test_sessions_are_isolated_between_principals(alice: LviClient, bob: LviClient) -> None:
    sid, vid = _session_with_image(alice)
    m = alice.upload_mask(sid, img.mask_png(img.rect_mask(W, H, (10, 10, 30, 30))))
    for call in (
        lambda: bob.get_session(sid),
        lambda: bob.get_image(sid, vid),
        lambda: bob.get_mask(sid, m.mask_id),
        lambda: bob.upload_image(sid, img.png(img.photo(W, H))),
        lambda: bob.remove(sid, m.mask_id),
        lambda: bob.undo(sid),
        lambda: bob.delete_session(sid),
        lambda: bob.clear_messages(sid),
    ):
        with pytest.raises(NotFoundError):
            call()
    # Bob's failed attempts changed nothing.
    s = alice.get_session(sid)
    assert [v.id for v in s.versions] == [vid] and s.head == vid


def test_versions_undo_redo_checkout_never_lose_a_version(alice: LviClient) -> None:
    s = alice.create_session("graph")
    assert s.head is None and s.versions == [] and s.title == "graph"
    v1 = alice.upload_image(s.id, img.png(img.photo(W, H, seed=1)))
    v2 = alice.upload_image(s.id, img.jpeg(img.photo(W, H, seed=2)), if_match=v1.id)
    assert (v1.parent, v2.parent) == (None, v1.id)
    assert v2.content_type == "image/jpeg" and (v2.width, v2.height) == (W, H)
    assert alice.get_image(s.id, "head")[:2] == b"\xff\xd8"

    assert alice.undo(s.id).id == v1.id
    with pytest.raises(ConflictError) as e:
        alice.undo(s.id)  # v1 has no parent
    assert e.value.code == "nothing_to_undo"
    assert alice.redo(s.id).id == v2.id
    with pytest.raises(ConflictError):
        alice.redo(s.id)

    # A new edit after undo branches; the undone version stays reachable by checkout.
    alice.undo(s.id)
    v3 = alice.upload_image(s.id, img.png(img.photo(W, H, seed=3)))
    assert v3.parent == v1.id
    with pytest.raises(ConflictError):
        alice.redo(s.id)  # the commit cleared the redo stack
    assert alice.checkout(s.id, v2.id).id == v2.id
    session = alice.get_session(s.id)
    assert [v.id for v in session.versions] == [1, 2, 3]
    assert session.head == v2.id and session.can_undo
    with pytest.raises(NotFoundError):
        alice.checkout(s.id, 99)
    with pytest.raises(NotFoundError):
        alice.get_image(s.id, 99)
    # A retried undo (same Idempotency-Key) undoes once; a stale If-Match undoes nothing.
    assert alice.undo(s.id, idempotency_key="u-1").id == v1.id
    assert alice.undo(s.id, idempotency_key="u-1").id == v1.id
    assert alice.get_session(s.id).head == v1.id
    alice.redo(s.id)
    with pytest.raises(ConflictError):
        alice.undo(s.id, if_match=v3.id)
    # Numbered versions are immutable bytes: the same upload is stored once.
    assert alice.get_image(s.id, v1.id) == img.png(img.photo(W, H, seed=1))


def test_if_match_conflict_and_idempotent_retry(alice: LviClient, gw: TestClient) -> None:
    sid, v1 = _session_with_image(alice)
    v2 = alice.upload_image(sid, img.png(img.photo(W, H, seed=5)), if_match=v1)
    with pytest.raises(ConflictError) as e:
        alice.upload_image(sid, img.png(img.photo(W, H, seed=6)), if_match=v1)
    assert e.value.code == "head_moved"

    data = img.png(img.photo(W, H, seed=7))
    first = alice.upload_image(sid, data, idempotency_key="k-1")
    again = alice.upload_image(sid, data, idempotency_key="k-1")
    assert again == first and first.parent == v2.id
    assert len(alice.get_session(sid).versions) == 3
    with pytest.raises(UnprocessableEntityError) as e2:
        alice.upload_image(sid, img.png(img.photo(W, H, seed=8)), idempotency_key="k-1")
    assert e2.value.code == "idempotency_key_reused"
    # Raw HTTP: the replay is marked.
    r = gw.post(
        f"/v1/sessions/{sid}/images",
        content=data,
        headers={
            "Authorization": "Bearer alice-key",
            "Content-Type": "image/png",
            "Idempotency-Key": "k-1",
        },
    )
    assert r.status_code == 201 and r.headers["idempotent-replayed"] == "true"
    assert r.json()["id"] == first.id
    # A retried create returns the same session.
    s1 = alice.create_session(idempotency_key="create-1")
    assert alice.create_session(idempotency_key="create-1").id == s1.id


def test_upload_forms_and_limits(alice: LviClient, make_gateway) -> None:  # type: ignore[no-untyped-def]
    s = alice.create_session()
    tc = make_gateway(max_image_pixels=100 * 100, max_body_bytes=200_000)
    auth = {"Authorization": "Bearer alice-key"}
    url = f"/v1/sessions/{s.id}/images"
    r = tc.post(url, files={"file": ("a.png", img.png(img.photo(W, H)), "image/png")}, headers=auth)
    assert r.status_code == 201 and r.json()["params"]["filename"] == "a.png"
    r = tc.post(url, files={"other": ("a.png", b"x", "image/png")}, headers=auth)
    assert r.status_code == 422
    cases = [
        (b"not an image at all", "image/png", 400, "invalid_image"),
        (b"", "image/png", 400, "empty_image"),
        (b"GIF89a" + b"\0" * 64, "image/png", 400, None),
        (img.png(img.photo(128, 128)), "image/png", 413, "image_too_many_pixels"),
        (b"hello", "text/plain", 415, "unsupported_content_type"),
        (b"\0" * 300_000, "image/png", 413, None),
    ]
    for body, ctype, status, code in cases:
        r = tc.post(url, content=body, headers={**auth, "Content-Type": ctype})
        assert r.status_code == status, (ctype, r.text)
        assert "error" in r.json()
        if code:
            assert r.json()["error"]["code"] == code
    # A real GIF is well-formed but not accepted.
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="GIF")
    with pytest.raises(UnsupportedMediaTypeError):
        alice.upload_image(s.id, buf.getvalue(), content_type="image/png")
    assert len(alice.get_session(s.id).versions) == 1


def test_masks_and_remove_keep_pixels_outside_the_dilated_mask(
    alice: LviClient, bob: LviClient
) -> None:
    sid, v1 = _session_with_image(alice)
    box = (30, 20, 50, 40)
    mask = img.rect_mask(W, H, box)
    m = alice.upload_mask(sid, img.mask_png(mask))
    assert m.bbox == list(box) and m.area == 400 and m.version == v1 and m.source == "upload"
    assert alice.get_mask(sid, m.mask_id) == img.mask_png(mask)

    v2 = alice.remove(sid, m.mask_id, dilate=4, if_match=v1)
    assert (v2.parent, v2.operation, v2.params["mask_id"]) == (v1, "remove", m.mask_id)
    before = img.decode(alice.get_image(sid, v1))
    after = img.decode(alice.get_image(sid, v2.id))
    assert after.shape == before.shape
    outside = ~img.dilate(mask, 4)
    assert np.array_equal(after[outside], before[outside])
    assert not np.array_equal(after[mask], before[mask])

    # Masks: wrong size, RGB, empty, unknown, and another session's mask.
    with pytest.raises(UnprocessableEntityError):
        alice.upload_mask(sid, img.mask_png(img.rect_mask(W + 8, H, box)))
    with pytest.raises(BadRequestError):
        alice.upload_mask(sid, img.png(img.photo(W, H)))
    with pytest.raises(UnprocessableEntityError):
        alice.upload_mask(sid, img.mask_png(np.zeros((H, W), bool)))
    with pytest.raises(NotFoundError):
        alice.remove(sid, "m_unknown")
    other, _ = _session_with_image(alice)
    with pytest.raises(NotFoundError) as e:
        alice.remove(other, m.mask_id)
    assert e.value.code == "mask_not_found"
    # Stroke as base64 is validated by the gateway before any worker is called.
    with pytest.raises(UnprocessableEntityError):
        alice.segment(sid, stroke=base64.b64encode(img.mask_png(img.rect_mask(8, 8, box))).decode())
    with pytest.raises(UnprocessableEntityError):
        alice.segment(sid)  # no prompt at all: refused by the SDK's own model


def test_edits_need_an_image_and_valid_boxes(alice: LviClient, gw: TestClient) -> None:
    s = alice.create_session()
    with pytest.raises(ConflictError) as e:
        alice.inpaint(s.id, [[0, 0, 10, 10]], ["a cat"])
    assert e.value.code == "no_image"
    with pytest.raises(NotFoundError):
        alice.get_image(s.id, "head")
    sid, _ = _session_with_image(alice)
    with pytest.raises(UnprocessableEntityError) as e2:
        alice.inpaint(sid, [[500, 500, 600, 600]], ["a cat"])
    assert e2.value.param == "boxes.0"
    auth = {"Authorization": "Bearer alice-key"}
    r = gw.post(
        f"/v1/sessions/{sid}/inpaint", json={"boxes": [[0, 0, 5, 5]], "phrases": []}, headers=auth
    )
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request_error"
    r = gw.post(f"/v1/sessions/{sid}/chat", json={"message": "x" * 9000}, headers=auth)
    assert r.status_code == 422
    r = gw.post(
        f"/v1/sessions/{sid}/remove", json={"mask_id": "m"}, headers={**auth, "If-Match": "abc"}
    )
    assert r.status_code == 400
    assert gw.get("/v1/sessions/bad$id", headers=auth).status_code == 404


def test_delete_session(alice: LviClient) -> None:
    sid, _ = _session_with_image(alice)
    alice.delete_session(sid)
    with pytest.raises(NotFoundError):
        alice.get_session(sid)
    with pytest.raises(NotFoundError):
        alice.delete_session(sid)


def test_caps_on_versions_and_bytes(make_gateway) -> None:  # type: ignore[no-untyped-def]
    tc = make_gateway(max_versions=2, max_session_bytes=40_000)
    c = LviClient("http://gateway", "carol-key", http_client=tc)
    s = c.create_session()
    c.upload_image(s.id, img.png(img.photo(W, H, seed=1)))
    c.upload_image(s.id, img.png(img.photo(W, H, seed=1)))  # same bytes: stored once
    with pytest.raises(ConflictError) as e:
        c.upload_image(s.id, img.png(img.photo(W, H, seed=2)))
    assert e.value.code == "version_limit"
    s2 = c.create_session()
    c.upload_image(s2.id, img.png(img.photo(W, H, seed=3)))
    with pytest.raises(PayloadTooLargeError) as e2:
        c.upload_image(s2.id, img.png(img.photo(W * 2, H * 2, seed=4)))
    assert e2.value.code == "session_storage_full"


def test_rate_limit_per_principal(make_gateway) -> None:  # type: ignore[no-untyped-def]
    tc = make_gateway(rate_limit_per_minute=60, rate_limit_burst=3)
    c = LviClient("http://gateway", "carol-key", http_client=tc)
    with pytest.raises(RateLimitError) as e:
        for _ in range(10):
            c.info()
    assert e.value.retry_after >= 1
    assert "retry-after" in e.value.headers
    # Another principal has its own budget.
    LviClient("http://gateway", "bob-key", http_client=tc).info()


def test_info_and_metrics(alice: LviClient, gw: TestClient) -> None:
    info = alice.info()
    states = {w.name: w.state for w in info.workers}
    assert states["inpaint"] == "ready" and states["llava"] == "unreachable"
    assert info.random_weights  # the inpaint worker runs the tiny profile
    assert info.random_skills == ["inpainting"]  # tiny LaMa: random; unreachable ones unknown
    assert info.profiles["inpaint"] == "tiny"
    text = gw.get("/metrics").text
    assert "lvi_http_request_seconds" in text and "lvi_gateway_versions_created_total" in text
    r = gw.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
