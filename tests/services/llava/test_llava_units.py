"""Pure logic of the llava worker (no model, no server): stop strings, incremental decoding,
history truncation and the image policy."""

from __future__ import annotations

import pytest

from lvi.contracts.llava import ChatCompletionRequest
from lvi.errors import BadRequest
from services.llava.conversation import (
    OMITTED_IMAGE_NOTE,
    ImageRef,
    Message,
    Text,
    apply_image_policy,
    fit_to_context,
    parse_request,
    template_messages,
)
from services.llava.textstream import IncrementalDecoder, StopMatcher


def run_stop(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    m = StopMatcher(stops)
    out = "".join(m.feed(p) for p in pieces) + m.flush()
    return out, m.stopped


@pytest.mark.parametrize(
    ("stops", "pieces", "expected", "stopped"),
    [
        ([], ["ab", "cd"], "abcd", False),
        (["cd"], ["ab", "cd", "ef"], "ab", True),
        (["cd"], ["abc", "def"], "ab", True),  # stop string split across deltas
        (["xyz"], ["abx", "y"], "abxy", False),  # a held prefix that never completes
        (["b", "cd"], ["acd", "b"], "a", True),  # the earliest match wins
    ],
)
def test_stop_matcher(stops: list[str], pieces: list[str], expected: str, stopped: bool) -> None:
    assert run_stop(stops, pieces) == (expected, stopped)


def test_stop_matcher_holds_back_only_possible_prefixes() -> None:
    m = StopMatcher(["END"])
    assert m.feed("hello E") == "hello "
    assert m.feed("x") == "Ex"


class ByteTokenizer:
    """Each token is one byte of UTF-8; decoding replaces incomplete sequences, like BPE."""

    def decode(self, ids: list[int], **kwargs: object) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


def test_incremental_decoder_waits_for_whole_characters() -> None:
    d = IncrementalDecoder(ByteTokenizer())
    text = "a€b"  # '€' is three bytes
    deltas = [d.push([b]) for b in text.encode()]
    assert deltas == ["a", "", "", "€", "b"]
    assert d.flush() == ""


def msgs(*turns: tuple[str, str]) -> list[Message]:
    return [Message(role, [Text(text)]) for role, text in turns]  # type: ignore[arg-type]


def words(messages: list[Message]) -> int:
    return sum(
        len(p.text.split()) if isinstance(p, Text) else 10 for m in messages for p in m.parts
    )


def test_fit_drops_oldest_turns_keeps_system_and_latest_image() -> None:
    image = ImageRef("messages.1.content.0")
    messages = [
        Message("system", [Text("be brief")]),
        Message("user", [image, Text("one two three")]),
        Message("assistant", [Text("four five six")]),
        Message("user", [Text("seven eight")]),
        Message("assistant", [Text("nine ten")]),
        Message("user", [Text("eleven")]),
    ]
    kept, dropped = fit_to_context(messages, words, budget=17)
    assert dropped == 1
    assert kept[0].role == "system"
    assert [m.role for m in kept] == ["system", "user", "assistant", "user"]
    assert kept[1].parts[0] is image  # the dropped turn's image moved to the first kept turn
    assert words(kept) <= 17


def test_fit_refuses_when_the_last_turn_alone_is_too_long() -> None:
    messages = msgs(("user", "a b c"), ("assistant", "d"), ("user", "e f g h i j"))
    with pytest.raises(BadRequest) as e:
        fit_to_context(messages, words, budget=3)
    assert e.value.code == "context_length_exceeded"


def test_fit_keeps_everything_that_fits() -> None:
    messages = msgs(("user", "a"), ("assistant", "b"), ("user", "c"))
    assert fit_to_context(messages, words, budget=100) == (messages, 0)


def test_latest_policy_keeps_only_the_last_image() -> None:
    first, second = ImageRef("a"), ImageRef("b")
    messages = [Message("user", [first, Text("x")]), Message("user", [second])]
    out = apply_image_policy(messages, "latest")
    assert isinstance(out[0].parts[0], Text) and out[0].parts[0].text == OMITTED_IMAGE_NOTE
    assert out[1].parts[0] is second
    assert apply_image_policy(messages, "all") == messages


def test_template_messages_shape() -> None:
    image = ImageRef("p")
    out = template_messages(
        [
            Message("system", []),
            Message("user", [Text("a"), Text("b"), image]),
            Message("assistant", [Text("c")]),
        ],
        {id(image): "PIXELS"},
    )
    assert out == [
        {"role": "system", "content": [{"type": "text", "text": ""}]},
        {
            "role": "user",
            "content": [{"type": "text", "text": "a\nb"}, {"type": "image", "image": "PIXELS"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "c"}]},
    ]


def test_parse_request_normalises_roles_and_limits() -> None:
    req = ChatCompletionRequest.model_validate(
        {
            "messages": [
                {"role": "developer", "content": "sys"},
                {"role": "user", "content": "hi"},
            ],
            "max_completion_tokens": 7,
            "stop": "###",
        }
    )
    chat = parse_request(req, default_max_tokens=100, max_images=2, allow_remote=False)
    assert [m.role for m in chat.messages] == ["system", "user"]
    assert chat.max_tokens == 7 and chat.stop == ["###"]


def test_remote_image_fetch_is_bounded(tmp_path: object) -> None:
    """With LLAVA_ALLOW_REMOTE_IMAGES the backend downloads an http image (a loopback server
    here), checks it like a data URI, and refuses one over the byte limit."""
    import http.server
    import threading

    from support.imaging import png_bytes, scene

    from lvi.errors import PayloadTooLarge
    from lvi.images import ImageLimits
    from services.llava.backend import LlavaBackend
    from services.llava.settings import LlavaSettings

    png = png_bytes(scene(40, 30))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cat.png"
        backend = LlavaBackend(LlavaSettings(model="tiny:llava", allow_remote_images=True))
        image = backend._fetch(ImageRef("p", url=url), ImageLimits())
        assert (image.width, image.height) == (40, 30)
        with pytest.raises(PayloadTooLarge):
            backend._fetch(ImageRef("p", url=url), ImageLimits(max_bytes=100))
        for bad in ("http://127.0.0.1:1/cat.png", "http://127.0.0.1:99999999/cat.png"):
            with pytest.raises(BadRequest):  # refused connection; invalid URL
                backend._fetch(ImageRef("p", url=bad), ImageLimits())
    finally:
        server.shutdown()
