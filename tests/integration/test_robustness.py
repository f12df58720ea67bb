"""Consistency under concurrency and failure, with real processes: concurrent If-Match edits,
idempotent retries (also of a streamed edit), two gateways sharing one Redis, a Redis restart
with AOF, and a stopped worker that takes down only its own skill."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import gw as img

from lvi.contracts.gateway import Version
from lvi_client import ConflictError, LviClient, NotFoundError, ServiceUnavailableError

from .conftest import Stack

W, H = 96, 64


def _session(client: LviClient) -> tuple[str, int, list[str]]:
    s = client.create_session()
    v = client.upload_image(s.id, img.png(img.photo(W, H)))
    masks = [
        client.upload_mask(s.id, img.mask_png(img.rect_mask(W, H, box))).mask_id
        for box in ((5, 5, 25, 25), (50, 30, 80, 60))
    ]
    return s.id, v.id, masks


def test_concurrent_edits_of_one_head_one_wins_one_409(
    alice: LviClient, gateway_url: str, require: Callable[..., None]
) -> None:
    require("inpaint")
    sid, v1, masks = _session(alice)

    def edit(mask_id: str) -> Version | ConflictError:
        with LviClient(gateway_url, "alice-key") as c:
            try:
                # The second round reuses masks made on the first head on purpose.
                return c.remove(sid, mask_id, if_match=v1, allow_stale_mask=True)
            except ConflictError as e:
                return e

    for _ in range(2):  # also once more from the new head, to see it is repeatable
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(edit, masks))
        wins = [r for r in results if isinstance(r, Version)]
        losses = [r for r in results if isinstance(r, ConflictError)]
        assert len(wins) == 1 and len(losses) == 1, results
        assert losses[0].code == "head_moved"
        session = alice.get_session(sid)
        assert session.head == wins[0].id and wins[0].parent == v1
        v1 = wins[0].id
    # Two rounds, two versions added, none lost, none half-written.
    assert [v.parent for v in alice.get_session(sid).versions] == [None, 1, 2]


def test_idempotent_retries_return_the_first_version(
    alice: LviClient, require: Callable[..., None]
) -> None:
    require("inpaint", "gligen")
    sid, _v1, masks = _session(alice)
    first = alice.remove(sid, masks[0], idempotency_key="remove-once")
    assert alice.remove(sid, masks[0], idempotency_key="remove-once") == first
    # A streamed edit retried with its key (streamed or not) gives the same version.
    got: list[object] = []
    v3 = alice.inpaint(
        sid, [[10, 10, 40, 40]], ["a cat"], steps=2, idempotency_key="inp-1", on_progress=got.append
    )
    assert got and v3.parent == first.id
    assert alice.inpaint(sid, [[10, 10, 40, 40]], ["a cat"], steps=2, idempotency_key="inp-1") == v3
    again: list[object] = []
    replay = alice.inpaint(
        sid,
        [[10, 10, 40, 40]],
        ["a cat"],
        steps=2,
        idempotency_key="inp-1",
        on_progress=again.append,
    )
    assert replay == v3 and not again
    assert len(alice.get_session(sid).versions) == 3


def test_two_gateways_share_sessions_and_redis_restart_keeps_them(
    stack: Stack, alice: LviClient, bob: LviClient, require: Callable[..., None]
) -> None:
    require("inpaint")
    gw2 = stack.start_gateway()
    with LviClient(gw2.url, "alice-key") as alice2:
        sid, v1, masks = _session(alice)
        v2 = alice2.remove(sid, masks[0], if_match=v1)  # edit through the second gateway
        assert alice.get_session(sid).head == v2.id  # seen by the first
        assert alice.undo(sid).id == v1
        with pytest.raises(ConflictError):
            alice2.remove(
                sid, masks[1], if_match=v2.id, allow_stale_mask=True
            )  # gateway 2 sees the undo at once
        assert alice2.redo(sid).id == v2.id
        assert alice2.get_image(sid, v2.id) == alice.get_image(sid, "head")
        with pytest.raises(NotFoundError), LviClient(gw2.url, "bob-key") as bob2:
            bob2.get_session(sid)

        others = [_session(bob)[0] for _ in range(2)]
        before = {s: bob.get_session(s) for s in others}
        before[sid] = alice.get_session(sid)
        stack.redis.restart()  # appendonly + appendfsync always
        for s, snapshot in before.items():
            client = alice if s == sid else bob
            got = _retry(lambda s=s, client=client: client.get_session(s))  # type: ignore[misc]
            assert got.versions == snapshot.versions and got.head == snapshot.head
            assert got.masks == snapshot.masks
        # Both gateways keep working without a restart.
        assert alice2.remove(sid, masks[1], allow_stale_mask=True).parent == v2.id
    gw2.stop()


def _retry(fn: Callable[[], object], tries: int = 50) -> object:
    import time

    for i in range(tries):
        try:
            return fn()
        except ServiceUnavailableError:
            if i == tries - 1:
                raise
            time.sleep(0.2)
    raise AssertionError  # pragma: no cover


def test_a_stopped_worker_takes_down_only_its_skill(
    stack: Stack, require: Callable[..., None]
) -> None:
    require("inpaint")
    own = stack.procs.lvi("worker", "inpaint")
    gw = stack.start_gateway(GATEWAY_INPAINT_URL=own.url)
    with LviClient(gw.url, "alice-key") as c:
        sid, v1, masks = _session(c)
        assert c.remove(sid, masks[0]).parent == v1
        own.stop()
        with pytest.raises(ServiceUnavailableError) as e:
            c.remove(sid, masks[1], allow_stale_mask=True)
        assert e.value.param == "inpaint" and "inpainting" in e.value.message
        session = c.get_session(sid)
        assert len(session.versions) == 2  # untouched
        ready = c.ready()
        states = {w.name: w.state for w in ready.workers}
        assert ready.status == "ready" and states["inpaint"] in ("unreachable", "circuit_open")
        # Every other skill still answers.
        if "llava" in stack.workers:
            assert c.chat(sid, "Still there?", max_tokens=4).reply.role == "assistant"
            assert states["llava"] == "ready"
        if "gligen" in stack.workers:
            c.generate(sid, "a tree", width=W, height=H, steps=2)  # same size: masks still fit
        # The worker comes back: after the breaker's reset the skill works again.
        own.start()
        c2 = _retry(lambda: c.remove(sid, masks[1], allow_stale_mask=True))
        assert isinstance(c2, Version)
    gw.stop()
