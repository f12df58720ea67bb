"""Sessions you can find again (issue 14): list (paged, newest change first, own only),
rename, delete, export as a zip; against the real stack."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from collections.abc import Callable

import pytest
from support import gw as img

from lvi_client import BadRequestError, LviClient, NotFoundError

from .conftest import Stack


def test_list_rename_delete(alice: LviClient, bob: LviClient) -> None:
    made = [alice.create_session(f"s{i}").id for i in range(3)]
    first = alice.list_sessions(limit=100)
    listed = [s.id for s in first.sessions]
    assert listed[:3] == made[::-1]  # newest first
    # A new version moves a session to the top; its thumbnail is the head image.
    v = alice.upload_image(made[0], img.png(img.photo(32, 24)))
    top = alice.list_sessions(limit=1)
    assert top.sessions[0].id == made[0] and top.next_cursor is not None
    row = top.sessions[0]
    assert (row.head, row.versions, row.title) == (v.id, 1, "s0")
    assert row.thumbnail_url == f"/v1/sessions/{made[0]}/images/{v.id}"
    assert alice.get_image(made[0], v.id)[:4] == b"\x89PNG"
    # Paging walks every session once.
    seen, cursor = [], None
    while True:
        page = alice.list_sessions(limit=2, cursor=cursor)
        seen += [s.id for s in page.sessions]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and set(made) <= set(seen)
    # Someone else's list never shows them.
    assert not set(made) & {s.id for s in bob.list_sessions(limit=100).sessions}

    renamed = alice.rename_session(made[1], "holiday")
    assert renamed.title == "holiday" and alice.get_session(made[1]).title == "holiday"
    assert alice.list_sessions(limit=1).sessions[0].id == made[1]
    assert alice.rename_session(made[1], None).title is None
    with pytest.raises(NotFoundError):
        bob.rename_session(made[1], "mine")
    alice.delete_session(made[2])
    assert made[2] not in {s.id for s in alice.list_sessions(limit=100).sessions}
    with pytest.raises(BadRequestError):
        alice.list_sessions(cursor="x")


def test_expired_sessions_drop_out_of_the_list(alice: LviClient, stack: Stack) -> None:
    keep = alice.create_session("kept").id
    sid = alice.create_session("short-lived").id  # the newest: first in the list
    # Expire the session as Redis would (its keys vanish); the index still names it.
    port = stack.redis.url.rsplit(":", 1)[1]
    keys = subprocess.run(
        ["redis-cli", "-p", port, "--scan", "--pattern", f"lvi:{{{sid}}}:*"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert keys
    subprocess.run(["redis-cli", "-p", port, "del", *keys], check=True, capture_output=True)
    page = alice.list_sessions(limit=1)
    assert [s.id for s in page.sessions] == [keep]  # the gone one is skipped, not a hole
    assert sid not in {s.id for s in alice.list_sessions(limit=100).sessions}


def test_export_is_a_zip_of_everything(
    alice: LviClient, bob: LviClient, require: Callable[..., None]
) -> None:
    require("llava")
    s = alice.create_session("export me")
    v1 = alice.upload_image(s.id, img.png(img.photo(40, 30)))
    m = alice.upload_mask(s.id, img.mask_png(img.rect_mask(40, 30, (5, 5, 20, 20))))
    alice.chat(s.id, "What is this?", max_tokens=4, seed=1)
    v2 = alice.upload_image(s.id, img.jpeg(img.photo(40, 30, seed=2)))
    data = alice.export_session(s.id)
    z = zipfile.ZipFile(io.BytesIO(data))
    names = set(z.namelist())
    expected = {"session.json", "chat.json", "chat.md", "versions/v0001.png", "versions/v0002.jpg"}
    assert expected <= names
    assert f"masks/{m.mask_id}.png" in names
    assert z.read("versions/v0001.png") == alice.get_image(s.id, v1.id)
    assert z.read("versions/v0002.jpg") == alice.get_image(s.id, v2.id)
    assert z.read(f"masks/{m.mask_id}.png") == alice.get_mask(s.id, m.mask_id)
    session = json.loads(z.read("session.json"))
    assert session["id"] == s.id and session["title"] == "export me" and session["head"] == 2
    chat = json.loads(z.read("chat.json"))
    assert [c["role"] for c in chat] == ["user", "assistant"] and chat[0]["version"] == 1
    md = z.read("chat.md").decode()
    assert md.startswith("# export me") and "What is this?" in md and "image v1" in md
    with pytest.raises(NotFoundError):
        bob.export_session(s.id)
