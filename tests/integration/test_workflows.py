"""Every workflow end to end through the SDK against the real stack (tiny models): upload,
chat (plain and streamed, across an image change), segment, painted mask + remove, move
(own pixels and regenerated), replace, inpaint new objects, generate (streamed progress),
undo/redo; the async SDK; and any OpenAI client on the OpenAI-compatible routes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import openai
import pytest
from support import gw as img

from lvi.contracts.gateway import ProgressEvent
from lvi_client import AsyncLviClient, ChatDelta, ChatReply, LviClient, NotFoundError

W, H = 128, 96
STEPS = 3  # tiny GLIGEN: a few denoising steps are enough to exercise the pipeline


def _upload(client: LviClient) -> tuple[str, int]:
    s = client.create_session("workflows")
    v = client.upload_image(s.id, img.png(img.photo(W, H)))
    return s.id, v.id


def test_segment_then_remove_and_move_own_pixels(
    alice: LviClient, require: Callable[..., None]
) -> None:
    require("seem", "inpaint")
    sid, v1 = _upload(alice)
    m = alice.segment(sid, points=[[60, 45]], labels=[1], boxes=[[40, 30, 90, 70]])
    assert m.source == "segment" and m.version == v1 and m.bbox is not None
    assert (m.width, m.height) == (W, H) and m.area and m.area > 0
    mask = img.decode(alice.get_mask(sid, m.mask_id))[..., 0] >= 128
    assert mask.shape == (H, W) and int(mask.sum()) == m.area

    v2 = alice.remove(sid, m.mask_id, dilate=3, if_match=v1)
    before, after = img.decode(alice.get_image(sid, v1)), img.decode(alice.get_image(sid, v2.id))
    outside = ~img.dilate(mask, 3)
    assert np.array_equal(after[outside], before[outside])

    # Move an object by its own pixels; a painted mask makes the geometry exact.
    box = (40, 30, 70, 60)
    painted = img.rect_mask(W, H, box)
    pm = alice.upload_mask(sid, img.mask_png(painted))
    v3 = alice.move(sid, pm.mask_id, 10, -5, dilate=3, feather=0)
    assert (v3.operation, v3.parent, v3.params["dx"]) == ("move", v2.id, 10)
    assert v3.mask_id is not None  # the object's mask at its new place
    moved = alice.get_session(sid).masks[-1]
    assert moved.mask_id == v3.mask_id and moved.version == v3.id and moved.source == "move"
    assert moved.bbox == [50, 25, 80, 55] and moved.area == pm.area
    out = img.decode(alice.get_image(sid, v3.id))
    ys, xs = np.nonzero(painted)
    assert np.array_equal(out[ys - 5, xs + 10], after[ys, xs])  # feather=0: exact pixels
    untouched = ~(img.dilate(painted, 3) | np.roll(np.roll(painted, -5, 0), 10, 1))
    assert np.array_equal(out[untouched], after[untouched])


def test_painted_mask_replace_inpaint_generate(
    alice: LviClient, require: Callable[..., None]
) -> None:
    require("gligen", "inpaint")
    sid, v1 = _upload(alice)
    painted = img.rect_mask(W, H, (20, 20, 60, 60))
    m = alice.upload_mask(sid, img.mask_png(painted))

    v2 = alice.replace(sid, m.mask_id, "a red ball", steps=STEPS, seed=7)
    assert (v2.operation, v2.parent, v2.seed) == ("replace", v1, 7)
    assert (v2.width, v2.height) == (W, H)
    before, after = img.decode(alice.get_image(sid, v1)), img.decode(alice.get_image(sid, v2.id))
    far = np.ones((H, W), bool)
    far[:80, :100] = False  # well away from the box and its feathered edge
    assert np.array_equal(after[far], before[far])

    # Several boxes and phrases at once (the original allowed one), streamed progress.
    events: list[ProgressEvent] = []
    v3 = alice.inpaint(
        sid,
        [[5, 5, 40, 40], [70, 40, 120, 90]],
        ["a cat", "a hat"],
        steps=STEPS,
        on_progress=events.append,
    )
    assert v3.operation == "inpaint" and v3.parent == v2.id and v3.seed is not None
    steps = [e for e in events if e.stage == "generate" and e.step]
    assert [e.step for e in steps] == list(range(1, STEPS + 1))
    assert steps[-1].total == STEPS

    # The mask was painted on v1 (the head is v3): applying it anyway must be asked for.
    v4 = alice.move(
        sid, m.mask_id, 30, 10, phrase="a red ball", steps=STEPS, seed=3, allow_stale_mask=True
    )
    assert (v4.operation, v4.seed, v4.params["phrase"]) == ("move", 3, "a red ball")

    v5 = alice.generate(
        sid, "a beach", boxes=[[8, 8, 56, 56]], phrases=["a boat"], width=64, height=64, steps=STEPS
    )
    assert (v5.width, v5.height, v5.parent, v5.operation) == (64, 64, v4.id, "generate")
    assert alice.get_image(sid, "head")[:4] == b"\x89PNG"
    # The same seed gives the same image (reproducible versions).
    v6 = alice.generate(sid, "a beach", width=64, height=64, steps=STEPS, seed=v5.seed)
    v7 = alice.generate(sid, "a beach", width=64, height=64, steps=STEPS, seed=v5.seed)
    assert v6.image_hash == v7.image_hash

    # Undo walks the graph back; redo forward.
    assert alice.undo(sid).id == v6.id
    assert alice.redo(sid).id == v7.id
    session = alice.get_session(sid)
    assert [v.parent for v in session.versions] == [None, 1, 2, 3, 4, 5, 6]


def test_chat_keeps_history_across_an_image_change(
    alice: LviClient, require: Callable[..., None]
) -> None:
    require("llava", "inpaint")
    sid, v1 = _upload(alice)
    first = alice.chat(sid, "What is in the picture?", max_tokens=8, seed=1)
    assert first.user.version == v1 and first.reply.role == "assistant"
    assert first.user.note is None and first.usage and first.usage.completion_tokens > 0

    m = alice.upload_mask(sid, img.mask_png(img.rect_mask(W, H, (10, 10, 30, 30))))
    v2 = alice.remove(sid, m.mask_id)
    pieces: list[str] = []
    final: ChatReply | None = None
    for ev in alice.chat_stream(sid, "And now?", max_tokens=8, seed=1):
        if isinstance(ev, ChatDelta):
            pieces.append(ev.content)
        else:
            final = ev
    assert final is not None
    assert final.reply.content == "".join(pieces)
    assert final.user.version == v2.id
    assert final.user.note and f"version {v2.id} after remove" in final.user.note
    msgs = alice.get_session(sid).messages
    assert [(m.role, m.version) for m in msgs] == [
        ("user", v1),
        ("assistant", v1),
        ("user", v2.id),
        ("assistant", v2.id),
    ]
    # "Clear chat" forgets the conversation and nothing else.
    alice.clear_messages(sid)
    after = alice.get_session(sid)
    assert after.messages == [] and after.head == v2.id and len(after.versions) == 2


def test_async_sdk_streams(gateway_url: str, require: Callable[..., None]) -> None:
    require("gligen", "llava")

    async def run() -> None:
        async with AsyncLviClient(gateway_url, "alice-key") as c:
            s = await c.create_session()
            got: list[ProgressEvent] = []
            v = await c.generate(
                s.id, "a red square", width=64, height=64, steps=STEPS, on_progress=got.append
            )
            assert v.id == 1 and v.parent is None and got
            deltas = [ev async for ev in c.chat_stream(s.id, "Describe it.", max_tokens=6, seed=2)]
            assert isinstance(deltas[-1], ChatReply)
            assert (await c.get_session(s.id)).messages[0].version == 1
            with pytest.raises(NotFoundError):
                await c.get_image(s.id, 5)

    asyncio.run(run())


def test_openai_client_against_the_gateway(gateway_url: str, require: Callable[..., None]) -> None:
    require("llava")
    client = openai.OpenAI(base_url=gateway_url + "/v1", api_key="alice-key", max_retries=0)
    models = client.models.list()
    assert models.data and models.data[0].id
    image = (
        "data:image/png;base64,"
        + __import__("base64").b64encode(img.png(img.photo(32, 32))).decode()
    )
    msgs = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": image}},
            ],
        }
    ]
    reply = client.chat.completions.create(
        model=models.data[0].id, messages=msgs, max_tokens=6, seed=1
    )  # type: ignore[arg-type]
    assert reply.choices[0].message.role == "assistant" and reply.usage is not None
    chunks = list(
        client.chat.completions.create(
            model=models.data[0].id,
            messages=msgs,
            max_tokens=6,
            seed=1,
            stream=True,  # type: ignore[arg-type]
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply.choices[0].message.content
    bad = openai.OpenAI(base_url=gateway_url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
