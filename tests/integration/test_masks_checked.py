"""Masks are checked, removal previews, and several objects at once (issue 14), through the
SDK and raw HTTP against the real stack (redis-server, tiny workers, the gateway process)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from support import gw as img

from lvi_client import (
    ConflictError,
    LviClient,
    ProgressEvent,
    UnprocessableEntityError,
)

W, H = 128, 96


def _upload(client: LviClient) -> tuple[str, int]:
    s = client.create_session("masks")
    v = client.upload_image(s.id, img.png(img.photo(W, H)))
    return s.id, v.id


def test_scores_are_the_models_and_stale_masks_are_refused(
    alice: LviClient, require: Callable[..., None]
) -> None:
    require("seem", "inpaint")
    sid, v1 = _upload(alice)
    seg = alice.segment(sid, boxes=[[40, 30, 90, 70]])
    assert seg.score is not None and 0.0 <= seg.score <= 1.0  # tiny SAM's own score
    assert [i.mask_id for i in seg.instances] == [seg.mask_id]
    painted = alice.upload_mask(sid, img.mask_png(img.rect_mask(W, H, (10, 10, 30, 30))))
    assert painted.score is None  # a painted mask has no model behind it

    v2 = alice.remove(sid, painted.mask_id, dilate=2, if_match=v1)
    # The segment mask was made on v1; the head is v2 now.
    with pytest.raises(ConflictError) as e:
        alice.remove(sid, seg.mask_id, dilate=2)
    assert e.value.code == "mask_version_mismatch" and e.value.param == "mask_id"
    assert alice.get_session(sid).head == v2.id  # nothing committed
    with pytest.raises(ConflictError) as e:
        alice.move(sid, seg.mask_id, 5, 5)
    assert e.value.code == "mask_version_mismatch"
    v3 = alice.remove(sid, seg.mask_id, dilate=2, allow_stale_mask=True)
    assert (v3.parent, v3.params["allow_stale_mask"]) == (v2.id, True)


def test_an_empty_mask_is_never_stored(
    alice: LviClient, gateway_url: str, require: Callable[..., None]
) -> None:
    require("seem")
    sid, _ = _upload(alice)
    # An empty painted mask is refused as an empty segment result is.
    with pytest.raises(UnprocessableEntityError) as e:
        alice.upload_mask(sid, img.mask_png(np.zeros((H, W), bool)))
    assert e.value.code == "empty_mask"
    # Text the tiny detector cannot match with its thresholds: 422 empty_mask, nothing stored
    # (the tiny random detector may also find something: then every instance has pixels).
    r = httpx.post(
        f"{gateway_url}/v1/sessions/{sid}/segment",
        headers={"Authorization": "Bearer alice-key"},
        json={"text": "zebra", "merge": False},
        timeout=60,
    )
    if r.status_code == 422:
        assert r.json()["error"]["code"] == "empty_mask"
        assert alice.get_session(sid).masks == []
    else:
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["instances"] and all(i["area"] > 0 for i in body["instances"])
        assert len(alice.get_session(sid).masks) == len(body["instances"])


def test_remove_preview_commits_nothing_and_matches_the_commit(
    alice: LviClient, gateway_url: str, require: Callable[..., None]
) -> None:
    require("inpaint")
    sid, v1 = _upload(alice)
    m = alice.upload_mask(sid, img.mask_png(img.rect_mask(W, H, (30, 20, 70, 60))))
    r = httpx.post(
        f"{gateway_url}/v1/sessions/{sid}/remove",
        headers={"Authorization": "Bearer alice-key", "Accept": "text/event-stream"},
        json={"mask_id": m.mask_id, "dilate": 4, "preview": True},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.headers["x-base-version"] == str(v1)
    preview = r.content
    assert img.decode(preview).shape[:2] == (H, W)
    s = alice.get_session(sid)
    assert (s.head, len(s.versions)) == (v1, 1)
    # A different dilation previews a different fill; the SDK's method gives the same bytes.
    wider = alice.remove_preview(sid, m.mask_id, dilate=12)
    assert wider != preview
    assert alice.remove_preview(sid, m.mask_id, dilate=4) == preview
    # Committing with the same settings stores exactly what was previewed.
    v2 = alice.remove(sid, m.mask_id, dilate=4, if_match=v1)
    assert v2.image_hash == hashlib.sha256(preview).hexdigest()
    assert "preview" not in v2.params


def test_several_objects_segmented_apart_and_removed_together(
    alice: LviClient, gateway_url: str, require: Callable[..., None]
) -> None:
    require("seem", "inpaint")
    sid, v1 = _upload(alice)
    boxes = [[5, 5, 45, 40], [70, 45, 120, 90]]
    merged = alice.segment(sid, boxes=boxes)
    assert len(merged.instances) == 1
    seg = alice.segment(sid, boxes=boxes, merge=False)
    assert len(seg.instances) == 2 and seg.mask_id == seg.instances[0].mask_id
    ids = [i.mask_id for i in seg.instances]
    assert len(set(ids)) == 2
    for inst in seg.instances:
        assert inst.version == v1 and inst.area and inst.bbox and inst.score is not None
    stored = {m.mask_id for m in alice.get_session(sid).masks}
    assert set(ids) <= stored
    masks = [img.decode(alice.get_mask(sid, i))[..., 0] >= 128 for i in ids]
    assert not np.array_equal(masks[0], masks[1])

    events: list[ProgressEvent] = []
    v2 = alice.remove(sid, ids, dilate=2, if_match=v1, on_progress=events.append)
    assert v2.params["mask_ids"] == ids and events
    before, after = img.decode(alice.get_image(sid, v1)), img.decode(alice.get_image(sid, v2.id))
    outside = ~img.dilate(masks[0] | masks[1], 2)
    assert np.array_equal(after[outside], before[outside])
    # mask_id and mask_ids together are refused before any work.
    r = httpx.post(
        f"{gateway_url}/v1/sessions/{sid}/remove",
        headers={"Authorization": "Bearer alice-key"},
        json={"mask_id": ids[0], "mask_ids": ids},
    )
    assert r.status_code == 422


def test_text_finds_every_instance_with_its_label(
    alice: LviClient, require: Callable[..., None]
) -> None:
    require("seem")
    sid, _ = _upload(alice)
    try:
        seg = alice.segment(sid, text="cat. dog", merge=False, max_instances=4)
    except UnprocessableEntityError as e:  # the random tiny detector found nothing
        assert e.code == "empty_mask"
        return
    assert 1 <= len(seg.instances) <= 4
    for inst in seg.instances:
        assert inst.label and inst.bbox and inst.area and inst.score is not None
    scores = [i.score or 0.0 for i in seg.instances]
    assert scores == sorted(scores, reverse=True)
