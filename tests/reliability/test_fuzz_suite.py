"""Fuzz: schemathesis against the gateway's and every worker's OpenAPI (no 5xx, answers match
the schema), and hand-written hostile inputs against the gateway, each of which must get a
clear 4xx (the error envelope, where the app answers), never a 5xx, and must leave the
victim session as it was.

Short here: the hostile inputs, and schemathesis against the gateway's session routes with a
few examples. ``make fuzz`` (``LVI_LONG=1``) adds the OpenAI pass-through and each of the
four workers, with ``FUZZ_EXAMPLES`` examples per operation.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import select
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from integration.conftest import Stack
from reliability.common import LONG, knob
from support import gw as img
from support.fuzz import schemathesis_run
from support.procs import ProcessFactory, ServerProcess

EXAMPLES = knob("FUZZ_EXAMPLES", 3, 50)
W, H = 96, 64
ALICE = {"Authorization": "Bearer alice-key"}
BOB = {"Authorization": "Bearer bob-key"}


# -- schemathesis ---------------------------------------------------------------------------
def _counts(stdout: str) -> dict[str, int]:
    """Figures from schemathesis' summary (e.g. '123 generated, 120 passed, 3 skipped')."""
    out: dict[str, int] = {}
    for n, word in re.findall(r"(\d+) (generated|passed|failed|skipped|errored)", stdout):
        out[word] = max(out.get(word, 0), int(n))
    return out


def _fuzz(
    url: str,
    scenario: dict[str, Any],
    *,
    timeout: float = 240,
    examples: int = EXAMPLES,
    **kw: Any,
) -> dict[str, int]:
    t0 = time.monotonic()
    result = schemathesis_run(url, max_examples=examples, timeout=timeout, **kw)
    counts = _counts(result.stdout)
    scenario.update(examples_per_operation=examples, seconds=round(time.monotonic() - t0), **counts)
    assert result.returncode == 0, result.stdout[-4000:]
    assert counts.get("generated", 0) > 0, result.stdout[-2000:]
    return counts


def test_schemathesis_gateway(rel_stack: Stack, scenario: dict[str, Any]) -> None:
    """Every public route, authenticated (the OpenAI pass-through only when a chat worker
    runs: with none, it answers 503 by design)."""
    exclude = None if "llava" in rel_stack.workers else "^/v1/(chat/completions|models)$"
    _fuzz(
        rel_stack.gateways[0].url,
        scenario,
        headers=ALICE | {"X-Request-Timeout": "60"},
        exclude_path_regex=exclude,
        timeout=900 if LONG else 120,
    )


WORKER_ENV = {
    # Bounded generation so that no fuzzed request can run into a deadline (a 504 would
    # count as a server error): a 128-token context, and 64 px GLIGEN outputs.
    "llava": {"LLAVA_MAX_CONTEXT": "128"},
    "gligen": {"GLIGEN_MAX_SIDE": "64", "GLIGEN_DEVICE": "cpu"},
    "seem": {"SEEM_BACKEND": "grabcut"},
    "inpaint": {"INPAINT_BACKEND": "opencv"},
}


@pytest.fixture(scope="module")
def fuzz_workers(procs: ProcessFactory) -> Iterator[dict[str, ServerProcess]]:
    started = {n: procs.lvi("worker", n, env=env, wait=False) for n, env in WORKER_ENV.items()}
    for w in started.values():
        w.wait_ready(timeout=240)
    yield started
    for w in started.values():
        w.stop()


@pytest.mark.long  # deselected unless LVI_LONG=1 (make fuzz); each worker's tests fuzz it too
@pytest.mark.parametrize("name", list(WORKER_ENV))
def test_schemathesis_worker(
    fuzz_workers: dict[str, ServerProcess], name: str, scenario: dict[str, Any]
) -> None:
    # A GLIGEN example may run up to 150 denoising steps: fewer of them keep it bounded.
    examples = min(EXAMPLES, 20) if name == "gligen" else EXAMPLES
    _fuzz(fuzz_workers[name].url, scenario, timeout=1200, examples=examples)


# -- hostile inputs -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gateway(rel_stack: Stack) -> str:
    return rel_stack.gateways[0].url


@pytest.fixture
def victim(gateway: str) -> Iterator[dict[str, Any]]:
    """Alice's session with an image and a mask; after the test it must be unchanged."""
    with httpx.Client(base_url=gateway, headers=ALICE, timeout=60) as c:
        sid = c.post("/v1/sessions", json={"title": "victim"}).json()["id"]
        v = c.post(
            f"/v1/sessions/{sid}/images",
            content=img.png(img.photo(W, H)),
            headers={"Content-Type": "image/png"},
        ).json()
        m = c.post(
            f"/v1/sessions/{sid}/masks",
            content=img.mask_png(img.rect_mask(W, H, (10, 10, 30, 30))),
            headers={"Content-Type": "image/png"},
        ).json()
        before = _session(c, sid)
        yield {"sid": sid, "version": v["id"], "mask_id": m["mask_id"], "client": c}
        assert _session(c, sid) == before, "a hostile request changed the session"
        assert c.get("/healthz").status_code == 200


def _session(c: httpx.Client, sid: str) -> dict[str, Any]:
    s = c.get(f"/v1/sessions/{sid}").json()
    for k in ("updated_at", "expires_in"):
        s.pop(k, None)
    return s


def _clear_4xx(resp: httpx.Response | tuple[int, bytes], case: str, envelope: bool = True) -> str:
    status, body = (resp.status_code, resp.content) if isinstance(resp, httpx.Response) else resp
    assert 400 <= status < 500, f"{case}: {status} {body[:300]!r}"
    if envelope:
        err = json.loads(body)["error"]
        assert err["type"] and err["code"] and err["message"], f"{case}: {body[:300]!r}"
        assert "Traceback" not in err["message"]
        return f"{status} {err['code']}"
    return str(status)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int, mode: int = 0) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` (8-bit, colour type ``mode``) with a
    tiny zlib stream: kilobytes on the wire, gigabytes once decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1) * 64, 9)  # 64 rows of zeros; the rest is missing
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def real_bomb_png(side: int) -> bytes:
    """A complete PNG, side x side of one colour: highly compressed, fully decodable."""
    raw = b"".join(b"\0" + b"\0" * side for _ in range(side))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def test_decompression_bombs(victim: dict[str, Any], scenario: dict[str, Any]) -> None:
    c, sid = victim["client"], victim["sid"]
    huge = bomb_png(50_000, 50_000)  # 2.5 gigapixels: PIL's own bomb guard
    big = bomb_png(8_000, 8_000)  # 64 megapixels: over the gateway's pixel limit
    mask_bomb = real_bomb_png(6_000)  # 36 megapixels, ~40 KB: a complete, valid image
    cases = {
        "upload 50000^2": c.post(
            f"/v1/sessions/{sid}/images", content=huge, headers={"Content-Type": "image/png"}
        ),
        "upload 8000^2": c.post(
            f"/v1/sessions/{sid}/images", content=big, headers={"Content-Type": "image/png"}
        ),
        "multipart 8000^2": c.post(
            f"/v1/sessions/{sid}/images", files={"file": ("b.png", big, "image/png")}
        ),
        "mask 6000^2 (complete)": c.post(
            f"/v1/sessions/{sid}/masks", content=mask_bomb, headers={"Content-Type": "image/png"}
        ),
        "mask 50000^2": c.post(
            f"/v1/sessions/{sid}/masks", content=huge, headers={"Content-Type": "image/png"}
        ),
        "segment stroke 50000^2": c.post(
            f"/v1/sessions/{sid}/segment",
            json={"stroke": base64.b64encode(huge).decode()},
        ),
    }
    scenario["bytes"] = {"50000^2": len(huge), "8000^2": len(big), "6000^2": len(mask_bomb)}
    scenario["answers"] = {k: _clear_4xx(r, k) for k, r in cases.items()}
    assert all(a.startswith("413") for k, a in scenario["answers"].items() if "segment" not in k)


def test_truncated_and_corrupt_images(gateway: str, scenario: dict[str, Any]) -> None:
    good = img.png(img.photo(W, H, seed=3))
    mask = img.mask_png(img.rect_mask(W, H, (5, 5, 40, 40)))
    answers: dict[str, str] = {}
    with httpx.Client(base_url=gateway, headers=ALICE, timeout=60) as c:
        sid = c.post("/v1/sessions").json()["id"]
        c.post(f"/v1/sessions/{sid}/images", content=good, headers={"Content-Type": "image/png"})

        def post(path: str, data: bytes) -> httpx.Response:
            return c.post(
                f"/v1/sessions/{sid}/{path}", content=data, headers={"Content-Type": "image/png"}
            )

        broken = {
            "header only": lambda b: b[:33],
            "cut in half": lambda b: b[: len(b) // 2],
            "no IEND": lambda b: b[:-12],
            "bad IDAT crc": lambda b: b[:-16] + bytes([b[-16] ^ 0xFF]) + b[-15:],
            "empty": lambda b: b"",
        }
        for name, cut in broken.items():
            rm = post("masks", cut(mask))
            # A mask is decoded on upload (for its bbox): only one that decodes is kept.
            answers[f"mask: {name}"] = (
                "201 (decodes)" if rm.status_code == 201 else _clear_4xx(rm, f"mask {name}")
            )
            r = post("images", cut(good))
            if r.status_code == 201:
                # The gateway stores uploads after a header check only (it never decodes on
                # the request path), so a broken body must fail cleanly where it is decoded.
                answers[f"upload: {name}"] = "201 (header is valid: stored)"
                m = post("masks", mask)
                answers[f"mask on it: {name}"] = str(m.status_code)
                mask_id = m.json()["mask_id"] if m.status_code == 201 else "none"
                rr = c.post(f"/v1/sessions/{sid}/remove", json={"mask_id": mask_id})
                if rr.status_code == 201:
                    answers[f"remove on it: {name}"] = "201 (the image decodes)"
                    assert _decodes(cut(good)), f"{name}: an undecodable image was edited"
                else:
                    answers[f"remove on it: {name}"] = _clear_4xx(rr, f"remove on {name}")
                for what, path in (("segment", "segment"), ("chat", "chat")):
                    body = {"points": [[5, 5]]} if what == "segment" else {"message": "hi"}
                    r2 = c.post(f"/v1/sessions/{sid}/{path}", json=body)
                    answers[f"{what} on it: {name}"] = str(r2.status_code)
                    assert r2.status_code < 500 or r2.status_code == 503, (what, r2.text)
            else:
                answers[f"upload: {name}"] = _clear_4xx(r, f"upload {name}")
        for name, data in {
            "jpeg cut": img.jpeg(img.photo(W, H))[:200],
            "gif": b"GIF89a" + b"\0" * 100,
            "text": b"hello",
        }.items():
            answers[f"upload: {name}"] = _clear_4xx(post("images", data), f"upload {name}")
    scenario["answers"] = answers
    scenario["accepted_broken_uploads"] = sorted(
        k for k, v in answers.items() if v.startswith("201")
    )


def test_truncated_png_upload_is_refused(gateway: str) -> None:
    good = img.png(img.photo(W, H, seed=4))
    with httpx.Client(base_url=gateway, headers=ALICE, timeout=60) as c:
        sid = c.post("/v1/sessions").json()["id"]
        r = c.post(
            f"/v1/sessions/{sid}/images",
            content=good[: len(good) // 2],
            headers={"Content-Type": "image/png"},
        )
        _clear_4xx(r, "truncated upload")


def _decodes(data: bytes) -> bool:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        return True
    except Exception:
        return False


def _raw_request(
    url: str, head: bytes, body: Iterator[bytes], timeout: float = 60
) -> tuple[int, bytes]:
    """Send a request on a raw socket, streaming ``body`` until the server answers (it may
    answer before reading it all); returns (status, body)."""
    u = urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    try:
        sock.sendall(head)
        for chunk in body:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data and time.monotonic() < deadline:
            part = sock.recv(65536)
            if not part:
                break
            data += part
        header, _, rest = data.partition(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        length = re.search(rb"(?i)content-length: *(\d+)", header)
        if length:
            while len(rest) < int(length.group(1)) and time.monotonic() < deadline:
                part = sock.recv(65536)
                if not part:
                    break
                rest += part
        return status, rest
    finally:
        sock.close()


def test_hundred_megabyte_bodies(
    gateway: str, victim: dict[str, Any], scenario: dict[str, Any]
) -> None:
    sid = victim["sid"]
    size = 100 * 1024 * 1024
    chunk = b"\0" * (1024 * 1024)
    host = urlsplit(gateway).netloc.encode()
    answers: dict[str, str] = {}
    t0 = time.monotonic()
    for name, framing in {
        "upload, Content-Length": b"Content-Length: %d\r\n" % size,
        "upload, chunked": b"Transfer-Encoding: chunked\r\n",
    }.items():
        head = (
            b"POST /v1/sessions/%s/images HTTP/1.1\r\nHost: %s\r\n"
            b"Authorization: Bearer alice-key\r\nContent-Type: image/png\r\n%s\r\n"
            % (sid.encode(), host, framing)
        )
        chunked = b"chunked" in framing
        body = ((b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk) for _ in range(100))
        answers[name] = _clear_4xx(_raw_request(gateway, head, body), name)
    # A JSON route: a 100 MB chat message.
    head = (
        b"POST /v1/sessions/%s/chat HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer alice-key\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (sid.encode(), host, size)
    )
    body = iter([b'{"message": "'] + [b"a" * len(chunk)] * 100)
    answers["chat, Content-Length"] = _clear_4xx(_raw_request(gateway, head, body), "chat 100MB")
    scenario["answers"] = answers
    scenario["seconds"] = round(time.monotonic() - t0, 2)
    assert all(a.startswith("413") for a in answers.values()), answers


def test_deeply_nested_and_odd_json(victim: dict[str, Any], scenario: dict[str, Any]) -> None:
    c, sid = victim["client"], victim["sid"]
    js = {"Content-Type": "application/json"}
    cases = {
        "nested 100000 lists": "[" * 100_000 + "]" * 100_000,
        "nested 100000 objects": '{"a":' * 100_000 + "1" + "}" * 100_000,
        "points nested 5000": '{"points": ' + "[" * 5000 + "]" * 5000 + "}",
        "5000-digit integer": '{"points": [[' + "9" * 5000 + ", 1]]}",
        "1e400": '{"points": [[1e400, 1]]}',
        "NaN": '{"points": [[NaN, 1]]}',
        "Infinity dilate": '{"points": [[1, 1]], "dilate": Infinity}',
        "invalid utf-8": b'{"text": "\xff\xfe\xfd"}',
        "null bytes": '{"text": "a\\u0000b"}',
        "lone surrogate": '{"text": "\\ud800"}',
        "duplicate keys": '{"points": [[1, 1]], "points": "x"}',
        "truncated": '{"points": [[1, ',
        "empty": "",
        "not json": "points=1,1",
        "array": "[1, 2, 3]",
        "100k points": json.dumps({"points": [[1, 1]] * 100_000}),
        "unknown field": '{"points": [[1, 1]], "__proto__": {"x": 1}}',
    }
    answers: dict[str, str] = {}
    for name, body in cases.items():
        r = c.post(f"/v1/sessions/{sid}/segment", content=body, headers=js)
        answers[name] = _clear_4xx(r, name)
    r = c.post(f"/v1/sessions/{sid}/remove", content=cases["nested 100000 objects"], headers=js)
    answers["remove nested"] = _clear_4xx(r, "remove nested")
    r = c.post("/v1/sessions", content=cases["nested 100000 lists"], headers=js)
    answers["create nested"] = _clear_4xx(r, "create nested")
    scenario["answers"] = answers


def test_huge_text(victim: dict[str, Any], scenario: dict[str, Any]) -> None:
    c, sid, mask_id = victim["client"], victim["sid"], victim["mask_id"]
    mb = "x" * (1024 * 1024)
    cases: dict[str, httpx.Response] = {
        "chat 10 MB": c.post(f"/v1/sessions/{sid}/chat", json={"message": mb * 10}),
        "title 1 MB": c.post("/v1/sessions", json={"title": mb}),
        "segment text 1 MB": c.post(f"/v1/sessions/{sid}/segment", json={"text": mb}),
        "replace phrase 1 MB": c.post(
            f"/v1/sessions/{sid}/replace", json={"mask_id": mask_id, "phrase": mb}
        ),
        "inpaint prompt 1 MB": c.post(
            f"/v1/sessions/{sid}/inpaint",
            json={"boxes": [[1, 1, 9, 9]], "phrases": ["a"], "prompt": mb},
        ),
        "generate 1000 phrases": c.post(
            f"/v1/sessions/{sid}/generate",
            json={"prompt": "x", "boxes": [[1, 1, 9, 9]] * 1000, "phrases": ["a"] * 1000},
        ),
        "mask id 1 MB": c.post(f"/v1/sessions/{sid}/remove", json={"mask_id": mb}),
        "Idempotency-Key 4 KB": c.post(
            f"/v1/sessions/{sid}/segment",
            json={"points": [[5, 5]]},
            headers={"Idempotency-Key": "k" * 4096},
        ),
        "If-Match 4 KB": c.post(f"/v1/sessions/{sid}/undo", headers={"If-Match": "1" * 4096}),
        "If-Match not a number": c.post(f"/v1/sessions/{sid}/undo", headers={"If-Match": '"x"'}),
        "chat stream 10 MB": c.post(
            f"/v1/sessions/{sid}/chat",
            json={"message": mb * 10, "stream": True},
            headers={"Accept": "text/event-stream"},
        ),
    }
    scenario["answers"] = {k: _clear_4xx(r, k) for k, r in cases.items()}
    # An oversized header is the HTTP server's business (uvicorn): never a 5xx.
    r = c.get(f"/v1/sessions/{sid}", headers={"X-Junk": "j" * 200_000})
    scenario["answers"]["unknown header 200 KB"] = str(r.status_code)
    assert r.status_code < 500


TRAVERSAL_SIDS = [
    "..",
    "../..",
    "%2e%2e",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "a%00b",
    "*",
    "%7Bx%7D",  # {x}: a Redis hash tag
    "lvi:%7Bx%7D:meta",
    "x" * 65,
    "%20",
    "..%5C..%5Cwindows",
]


def _raw(gateway: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """A request with the path exactly as given (no client-side dot-segment removal)."""
    u = urlsplit(gateway)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=30)
    try:
        headers = {**ALICE, "Content-Type": "application/json"}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_path_traversal_and_injection_in_ids(
    gateway: str, victim: dict[str, Any], scenario: dict[str, Any]
) -> None:
    sid = victim["sid"]
    answers: dict[str, str] = {}

    def check(method: str, path: str, body: bytes | None = None) -> None:
        status, data = _raw(gateway, method, path, body)
        # 404 for ids, 405 where '..' made the path another route's; never the victim's data.
        answers[f"{method} {path.replace(sid, '<sid>')}"] = _clear_4xx((status, data), path)
        assert sid.encode() not in data or b"not found" in data.lower()

    for bad in TRAVERSAL_SIDS:
        check("GET", f"/v1/sessions/{bad}")
        check("GET", f"/v1/sessions/{bad}/images/head")
        check("DELETE", f"/v1/sessions/{bad}")
        check("POST", f"/v1/sessions/{bad}/undo")
    for ref in ("..", "../..", "..%2F..%2Fhead", "-1", "0", "1e3", "9" * 30, "head%00", "%2A"):
        check("GET", f"/v1/sessions/{sid}/images/{ref}")
    for mid in ("..", "..%2F..%2Fmeta", "*", "%7B" + sid + "%7D", "m_" + "0" * 70):
        check("GET", f"/v1/sessions/{sid}/masks/{mid}")
    for mid in ("../../meta", "*", "{" + sid + "}:meta", "m_x\u0000"):
        check("POST", f"/v1/sessions/{sid}/remove", json.dumps({"mask_id": mid}).encode())
    check("POST", f"/v1/sessions/{sid}/checkout", b'{"version": 1000000000000000000000000000000}')
    check("POST", f"/v1/sessions/{sid}/masks?version=../1", b"x")
    scenario["answers"] = answers


def test_another_principals_ids(victim: dict[str, Any], scenario: dict[str, Any]) -> None:
    sid, mask_id, vid = victim["sid"], victim["mask_id"], victim["version"]
    png = img.png(img.photo(W, H, seed=5))
    answers: dict[str, str] = {}
    with httpx.Client(base_url=str(victim["client"].base_url), headers=BOB, timeout=60) as bob:
        own = bob.post("/v1/sessions").json()["id"]
        bob.post(f"/v1/sessions/{own}/images", content=png, headers={"Content-Type": "image/png"})
        calls = {
            "GET session": ("GET", f"/v1/sessions/{sid}", {}),
            "GET image": ("GET", f"/v1/sessions/{sid}/images/{vid}", {}),
            "GET head": ("GET", f"/v1/sessions/{sid}/images/head", {}),
            "GET mask": ("GET", f"/v1/sessions/{sid}/masks/{mask_id}", {}),
            "DELETE": ("DELETE", f"/v1/sessions/{sid}", {}),
            "upload": (
                "POST",
                f"/v1/sessions/{sid}/images",
                {"content": png, "headers": {"Content-Type": "image/png"}},
            ),
            "mask upload": (
                "POST",
                f"/v1/sessions/{sid}/masks",
                {"content": img.mask_png(img.rect_mask(W, H, (1, 1, 9, 9)))},
            ),
            "remove": ("POST", f"/v1/sessions/{sid}/remove", {"json": {"mask_id": mask_id}}),
            "move": (
                "POST",
                f"/v1/sessions/{sid}/move",
                {"json": {"mask_id": mask_id, "dx": 1, "dy": 1}},
            ),
            "segment": ("POST", f"/v1/sessions/{sid}/segment", {"json": {"points": [[5, 5]]}}),
            "chat": ("POST", f"/v1/sessions/{sid}/chat", {"json": {"message": "hi"}}),
            "undo": ("POST", f"/v1/sessions/{sid}/undo", {}),
            "checkout": ("POST", f"/v1/sessions/{sid}/checkout", {"json": {"version": vid}}),
            "alice's mask in bob's session": (
                "POST",
                f"/v1/sessions/{own}/remove",
                {"json": {"mask_id": mask_id}},
            ),
            "alice's mask bytes via bob's session": (
                "GET",
                f"/v1/sessions/{own}/masks/{mask_id}",
                {},
            ),
        }
        for name, (method, path, kw) in calls.items():
            r = bob.request(method, path, **kw)
            answers[name] = _clear_4xx(r, name)
            assert r.status_code == 404, (name, r.status_code, r.text[:200])
            assert sid not in r.text or "not found" in r.text.lower()
        # Same Idempotency-Key as one of alice's requests: no replay of her answer.
        key = "shared-key-1"
        a = victim["client"].post(
            "/v1/sessions", json={"title": "a"}, headers={"Idempotency-Key": key}
        )
        b = bob.post("/v1/sessions", json={"title": "b"}, headers={"Idempotency-Key": key})
        assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]
        answers["same Idempotency-Key, other principal"] = "201, another session"
    with httpx.Client(base_url=str(victim["client"].base_url), timeout=60) as anon:
        for name, headers in {
            "no key": {},
            "wrong key": {"Authorization": "Bearer nope"},
            "basic auth": {"Authorization": "Basic YWxpY2U6YWxpY2Uta2V5"},
            "8 KB key": {"Authorization": "Bearer " + "k" * 8192},
        }.items():
            r = anon.get(f"/v1/sessions/{sid}", headers=headers)
            answers[name] = _clear_4xx(r, name)
            assert r.status_code == 401
    scenario["answers"] = answers


def test_wrong_methods_and_content_types(victim: dict[str, Any], scenario: dict[str, Any]) -> None:
    c, sid = victim["client"], victim["sid"]
    png = img.png(img.photo(W, H, seed=6))
    cases = {
        "upload text/plain": c.post(
            f"/v1/sessions/{sid}/images", content=b"hello", headers={"Content-Type": "text/plain"}
        ),
        "upload json": c.post(f"/v1/sessions/{sid}/images", json={"file": "x"}),
        "multipart no file": c.post(f"/v1/sessions/{sid}/images", data={"x": "y"}),
        "multipart two files": c.post(
            f"/v1/sessions/{sid}/images",
            files=[("file", ("a.png", png, "image/png")), ("file", ("b.png", png, "image/png"))],
        ),
        "multipart broken": c.post(
            f"/v1/sessions/{sid}/images",
            content=b'--zz\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
            headers={"Content-Type": "multipart/form-data; boundary=zz"},
        ),
        "PATCH session": c.patch(f"/v1/sessions/{sid}", json={}),
        "PUT image": c.put(f"/v1/sessions/{sid}/images/1", content=png),
        "segment as form": c.post(f"/v1/sessions/{sid}/segment", data={"points": "1,1"}),
        "X-Request-Timeout junk": c.post(
            f"/v1/sessions/{sid}/segment",
            json={"points": [[1, 1]], "dilate": -1},
            headers={"X-Request-Timeout": "nan"},
        ),
    }
    scenario["answers"] = {k: _clear_4xx(r, k) for k, r in cases.items()}
