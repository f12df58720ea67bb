"""Bad inputs (raw httpx), admission control and disconnect-cancellation of the llava worker.

Every bad input gets the error envelope with a 4xx (422 schema, 400 semantic, 413 size,
415 format), never a 500. A client that leaves a stream stops its generation: shown with the
worker's token counters, not with timings.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import time
from typing import Any

import httpx
import numpy as np
import pytest
from support.imaging import b64, png_bytes, scene
from support.procs import ServerProcess

CHAT = "/v1/chat/completions"


def uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{b64(data)}"


def user_with_image(url: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "text", "text": "What is it?"},
            ],
        }
    ]


def small_png() -> bytes:
    return png_bytes(scene(40, 32))


def noise_png(side: int) -> bytes:
    """Incompressible pixels: a PNG of about 3 * side^2 bytes."""
    return png_bytes(np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8))


def gif_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("P", (8, 8)).save(buf, "GIF")
    return buf.getvalue()


def assert_envelope(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) == {"type", "message", "code", "param"}
    assert err["message"] and "Traceback" not in r.text
    if code is not None:
        assert err["code"] == code, err
    return err


HI = [{"role": "user", "content": "hi"}]

BAD_INPUTS: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("no messages", {"messages": []}, 422, None),
    ("no messages field", {"max_tokens": 3}, 422, None),
    (
        "only a system message",
        {"messages": [{"role": "system", "content": "x"}]},
        400,
        "no_user_message",
    ),
    ("unknown role", {"messages": [{"role": "robot", "content": "x"}]}, 422, None),
    (
        "unknown part type",
        {"messages": [{"role": "user", "content": [{"type": "audio", "audio": "x"}]}]},
        422,
        None,
    ),
    (
        "image part without url",
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        422,
        None,
    ),
    (
        "http image url",
        {"messages": user_with_image("https://example.com/cat.png")},
        400,
        "remote_image_refused",
    ),
    (
        "other url scheme",
        {"messages": user_with_image("file:///etc/passwd")},
        400,
        "invalid_image_url",
    ),
    (
        "data uri not base64",
        {"messages": user_with_image("data:image/png;base64,@@@")},
        400,
        "invalid_base64",
    ),
    (
        "data uri without base64",
        {"messages": user_with_image("data:image/png,abc")},
        400,
        "invalid_image",
    ),
    (
        "corrupt image",
        {"messages": user_with_image(uri(b"\x89PNG\r\n\x1a\nnot really"))},
        400,
        "invalid_image",
    ),
    (
        "image over the byte limit",
        {"messages": user_with_image(uri(noise_png(300)))},
        413,
        "image_too_large",
    ),
    (
        "image over the pixel limit",
        {"messages": user_with_image(uri(png_bytes(np.zeros((1000, 1100, 3), np.uint8))))},
        413,
        "image_too_many_pixels",
    ),
    ("gif image", {"messages": user_with_image(uri(gif_bytes(), "image/gif"))}, 415, None),
    (
        "image in an assistant message",
        {
            "messages": [
                *HI,
                {
                    "role": "assistant",
                    "content": [{"type": "image_url", "image_url": {"url": uri(small_png())}}],
                },
                *HI,
            ]
        },
        400,
        "image_not_allowed",
    ),
    (
        "more images than the worker accepts",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": uri(small_png())}}
                        for _ in range(9)
                    ],
                }
            ]
        },
        400,
        "too_many_images",
    ),
    (
        "max_tokens above the model's context",
        {"messages": HI, "max_tokens": 5000},
        400,
        "max_tokens_too_large",
    ),
    ("max_tokens above the schema bound", {"messages": HI, "max_tokens": 40000}, 422, None),
    (
        "latest turn alone over the context",
        {"messages": [{"role": "user", "content": "word " * 6000}], "max_tokens": 8},
        400,
        "context_length_exceeded",
    ),
    ("max_tokens zero", {"messages": HI, "max_tokens": 0}, 422, None),
    ("temperature above 2", {"messages": HI, "temperature": 2.5}, 422, None),
    ("temperature below 0", {"messages": HI, "temperature": -0.1}, 422, None),
    ("top_p zero", {"messages": HI, "top_p": 0}, 422, None),
    ("n above 1", {"messages": HI, "n": 2}, 422, None),
    ("five stop strings", {"messages": HI, "stop": ["a", "b", "c", "d", "e"]}, 422, None),
    ("text over the limit", {"messages": [{"role": "user", "content": "x" * 40000}]}, 422, None),
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [pytest.param(b, s, c, id=name) for name, b, s, c in BAD_INPUTS],
)
def test_bad_input_gets_envelope(
    llava: ServerProcess, body: dict[str, Any], status: int, code: str | None, stream: bool
) -> None:
    # With stream=true the error must still come as a plain HTTP error, before any SSE.
    r = httpx.post(llava.url + CHAT, json={**body, "stream": stream}, timeout=30)
    assert_envelope(r, status, code)
    assert not r.headers["content-type"].startswith("text/event-stream")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_truncated_image_fails_cleanly_at_decode(llava: ServerProcess, stream: bool) -> None:
    """A PNG whose header and end marker are fine but whose compressed pixels are broken passes
    the cheap check and fails while decoding in the inference thread: still a 400, also for a
    stream. (A file cut short is refused before that, from its missing end marker.)"""
    data = bytearray(png_bytes(scene(64, 64)))
    mid = len(data) // 2
    data[mid : mid + 64] = b"\x00" * 64
    body = {"messages": user_with_image(uri(bytes(data))), "stream": stream}
    r = httpx.post(llava.url + CHAT, json=body, timeout=30)
    assert_envelope(r, 400, "invalid_image")


def test_malformed_json_and_wrong_content_type(llava: ServerProcess) -> None:
    r = httpx.post(
        llava.url + CHAT, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_envelope(r, 422)
    r = httpx.post(llava.url + CHAT, content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code in (415, 422)
    assert_envelope(r, r.status_code)


def test_bad_inputs_are_refused_by_the_forwarder_too(upstream: ServerProcess) -> None:
    for name, body, status, code in BAD_INPUTS:
        if name.startswith("max_tokens above the model"):
            continue  # the forwarder does not know the upstream's context; the upstream says 400
        r = httpx.post(upstream.url + CHAT, json=body, timeout=30)
        assert_envelope(r, status, code)
    # ...and what only the upstream can judge comes back with the upstream's status and code.
    r = httpx.post(upstream.url + CHAT, json={"messages": HI, "max_tokens": 5000}, timeout=30)
    assert_envelope(r, 400, "max_tokens_too_large")


def test_request_id_is_echoed(llava: ServerProcess) -> None:
    r = httpx.post(
        llava.url + CHAT,
        json={"messages": HI, "max_tokens": 1},
        headers={"X-Request-ID": "chat-42"},
        timeout=30,
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "chat-42"


def info(srv: ServerProcess) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(srv.url + "/v1/info", timeout=10).json()
    return data


def wait_for(pred: Any, what: str, timeout: float = 30.0) -> None:
    """Poll a condition (a state change, not a duration: no timing is asserted)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_disconnect_stops_generation_and_frees_the_slot(llava: ServerProcess) -> None:
    """One slot, one queue place (LLAVA_MAX_QUEUE=1): a long stream holds the slot, a second
    request waits, a third gets 429. The streaming client then leaves: its generation stops
    far short of max_tokens and the waiting request is served."""
    before = info(llava)
    big = 4000
    long_body = {"messages": HI, "max_tokens": big, "temperature": 0, "stream": True}
    with cf.ThreadPoolExecutor(1) as pool, httpx.Client(timeout=60) as c:
        with c.stream("POST", llava.url + CHAT, json=long_body) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            # Keep a reference: a line iterator dropped by ``break`` is closed, and closing
            # it closes the connection (that is exactly the disconnect, but later).
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("data:") and json.loads(line[5:])["choices"][0]["delta"].get(
                    "content"
                ):
                    break  # tokens are flowing: the slot is busy
            waiting = pool.submit(
                httpx.post, llava.url + CHAT, json={"messages": HI, "max_tokens": 3}, timeout=120
            )
            wait_for(lambda: info(llava)["queue_depth"] == 1, "the second request to queue")
            refused = c.post(llava.url + CHAT, json={"messages": HI, "max_tokens": 3})
            assert_envelope(refused, 429, "queue_full")
            assert int(refused.headers["retry-after"]) >= 1
        # Leaving the block closed the connection mid-stream.
        served = waiting.result(timeout=120)
    assert served.status_code == 200, served.text
    wait_for(lambda: info(llava)["inflight"] == 0, "the slot to be free")
    after = info(llava)
    assert after["cancelled_generations"] == before["cancelled_generations"] + 1
    abandoned = (
        after["generated_tokens"]
        - before["generated_tokens"]
        - served.json()["usage"]["completion_tokens"]
    )
    assert 0 < abandoned < big // 2, abandoned
    metrics = httpx.get(llava.url + "/metrics").text
    assert 'lvi_llava_generations_total{finish_reason="cancelled"}' in metrics
    assert 'lvi_rejected_total{reason="queue_full"}' in metrics


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_deadline_abandons_a_long_generation(llava: ServerProcess, stream: bool) -> None:
    """``X-Request-Timeout`` bounds a reply: a 504 envelope, as the HTTP status or (once the
    stream has started) as the stream's last event; the slot is freed either way."""
    before = info(llava)
    r = httpx.post(
        llava.url + CHAT,
        json={"messages": HI, "max_tokens": 4000, "temperature": 0, "stream": stream},
        headers={"X-Request-Timeout": "0.5"},
        timeout=60,
    )
    if r.status_code == 200:
        assert stream and r.headers["content-type"].startswith("text/event-stream")
        events = [line[5:].strip() for line in r.text.splitlines() if line.startswith("data:")]
        err = json.loads(events[-1])["error"]
        assert err["code"] == "deadline_exceeded" and "[DONE]" not in events
    else:
        assert_envelope(r, 504, "deadline_exceeded")
    wait_for(lambda: info(llava)["inflight"] == 0, "the slot to be free")
    after = info(llava)
    assert after["cancelled_generations"] == before["cancelled_generations"] + 1
    assert after["generated_tokens"] - before["generated_tokens"] < 4000


def test_disconnect_from_the_forwarder_reaches_the_upstream(
    upstream: ServerProcess, llava: ServerProcess
) -> None:
    """Leaving a stream of the ``openai`` backend closes its upstream call, and the upstream
    worker stops generating."""
    before = info(llava)
    body = {"messages": HI, "max_tokens": 4000, "temperature": 0, "stream": True}
    with httpx.Client(timeout=60) as c, c.stream("POST", upstream.url + CHAT, json=body) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data:") and '"content":"' in line.replace(" ", ""):
                break  # the iterator is dropped: the connection closes here
    wait_for(
        lambda: info(llava)["cancelled_generations"] == before["cancelled_generations"] + 1,
        "the upstream generation to be cancelled",
    )
    wait_for(lambda: info(llava)["inflight"] == 0 and info(upstream)["inflight"] == 0, "free slots")
    assert info(llava)["generated_tokens"] - before["generated_tokens"] < 4000 // 2
