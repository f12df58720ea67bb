"""The llava contract through the official ``openai`` client, against every way of serving it:
tiny LLaVA-1.5, tiny LLaVA-NeXT, and the ``openai`` backend forwarding to a second worker.

Outputs of random weights are meaningless: the tests check structure and behaviour (usage,
chunking, stream equals non-stream, seeds, stop strings, truncation), never the text.
"""

from __future__ import annotations

import httpx
from openai import OpenAI
from support.imaging import b64, png_bytes, scene
from support.procs import ServerProcess

from lvi.contracts.llava import TRUNCATED_HEADER


def data_uri(width: int = 48, height: int = 40, seed: int = 0) -> str:
    return "data:image/png;base64," + b64(png_bytes(scene(width, height, seed=seed)))


def image_part(seed: int = 0, width: int = 48, height: int = 40) -> dict[str, object]:
    return {"type": "image_url", "image_url": {"url": data_uri(width, height, seed)}}


def ask_about_image(text: str = "What is in this image?", seed: int = 0) -> list[dict[str, object]]:
    return [{"role": "user", "content": [image_part(seed), {"type": "text", "text": text}]}]


def test_models_and_info(client: OpenAI, server: ServerProcess) -> None:
    models = client.models.list()
    assert len(models.data) == 1 and models.data[0].id
    info = httpx.get(server.url + "/v1/info").json()
    assert info["worker"] == "llava" and info["state"] == "ready"
    assert info["backend"] in ("transformers", "openai")


def test_non_streaming_reply_with_usage(client: OpenAI) -> None:
    r = client.chat.completions.create(
        model="llava",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello!"},
        ],
        max_tokens=6,
        temperature=0,
    )
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert len(r.choices) == 1 and r.choices[0].message.role == "assistant"
    assert isinstance(r.choices[0].message.content, str)
    # Tiny models never emit EOS (their EOS row is zeroed), so a reply runs to max_tokens.
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 6
    assert r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_image_as_data_uri_costs_image_tokens(client: OpenAI) -> None:
    text_only = client.chat.completions.create(
        model="llava",
        messages=[{"role": "user", "content": "What is in this image?"}],
        max_tokens=2,
        temperature=0,
    )
    with_image = client.chat.completions.create(
        model="llava", messages=ask_about_image(), max_tokens=2, temperature=0
    )
    assert with_image.usage is not None and text_only.usage is not None
    # The image became several placeholder tokens in the prompt (16 for the tiny CLIP tower).
    assert with_image.usage.prompt_tokens >= text_only.usage.prompt_tokens + 8


def test_streaming_is_token_by_token_and_equals_non_streaming(client: OpenAI) -> None:
    kwargs: dict[str, object] = {
        "model": "llava",
        "messages": ask_about_image(),
        "max_tokens": 16,
        "temperature": 0,
    }
    whole = client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    chunks = list(
        client.chat.completions.create(
            **kwargs,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].object == "chat.completion.chunk"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    content = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(content) >= 4  # deltas leave as tokens are decoded, not in one piece
    finals = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finals == ["length"]
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices and usage.completion_tokens == 16
    assert "".join(content) == whole.choices[0].message.content
    assert whole.usage is not None and usage.prompt_tokens == whole.usage.prompt_tokens


def test_multi_turn_with_two_images(client: OpenAI) -> None:
    """A conversation survives an image change: a later user turn brings a new image."""
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": [image_part(1), {"type": "text", "text": "Describe it."}]},
        {"role": "assistant", "content": "A red square on a textured background."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And this edited version?"},
                image_part(2, 64, 32),
            ],
        },
    ]
    r = client.chat.completions.create(model="llava", messages=messages, max_tokens=5)  # type: ignore[arg-type]
    assert r.choices[0].message.content is not None
    assert r.usage is not None and r.usage.completion_tokens <= 5
    stream = client.chat.completions.create(
        model="llava",
        messages=messages,  # type: ignore[arg-type]
        max_tokens=5,
        stream=True,
    )
    assert any(c.choices and c.choices[0].finish_reason for c in stream)


def test_seed_reproduces_a_sampled_reply(client: OpenAI) -> None:
    kwargs: dict[str, object] = {
        "model": "llava",
        "messages": ask_about_image(seed=3),
        "max_tokens": 12,
        "temperature": 1.0,
        "top_p": 0.9,
        "seed": 1234,
    }
    a = client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    b = client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    assert a.choices[0].message.content == b.choices[0].message.content


def test_stop_string_cuts_the_reply(client: OpenAI) -> None:
    kwargs: dict[str, object] = {
        "model": "llava",
        "messages": [{"role": "user", "content": "Count to ten."}],
        "max_tokens": 24,
        "temperature": 0,
    }
    full = client.chat.completions.create(**kwargs).choices[0].message.content  # type: ignore[call-overload]
    assert full is not None and len(full) >= 8
    cut = len(full) // 2
    stop = full[cut : cut + 3]
    expected = full[: full.find(stop)]
    r = client.chat.completions.create(**kwargs, stop=[stop, "\x00never"])  # type: ignore[call-overload]
    assert r.choices[0].message.content == expected
    assert r.choices[0].finish_reason == "stop"
    streamed = client.chat.completions.create(**kwargs, stop=stop, stream=True)  # type: ignore[call-overload]
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == expected


def test_long_history_drops_oldest_turns_and_says_so(client: OpenAI) -> None:
    """History far over the 4096-token context: oldest turns go, the reply still comes."""
    messages: list[dict[str, object]] = [{"role": "system", "content": "Be brief."}]
    for i in range(6):
        first = (
            [image_part(4), {"type": "text", "text": "look " * 400}] if i == 0 else "more " * 500
        )
        messages += [
            {"role": "user", "content": first},
            {"role": "assistant", "content": "ok " * 300},
        ]
    messages.append({"role": "user", "content": "And now?"})
    raw = client.chat.completions.with_raw_response.create(
        model="llava",
        messages=messages,  # type: ignore[arg-type]
        max_tokens=4,
        temperature=0,
    )
    assert int(raw.headers[TRUNCATED_HEADER]) >= 1
    r = raw.parse()
    assert r.usage is not None and r.usage.prompt_tokens + 4 <= 4096
    assert r.choices[0].finish_reason == "length"
    # The same through a stream: the header is sent before the first chunk.
    with client.chat.completions.with_streaming_response.create(
        model="llava",
        messages=messages,  # type: ignore[arg-type]
        max_tokens=2,
        stream=True,
    ) as resp:
        assert int(resp.headers[TRUNCATED_HEADER]) >= 1
        assert any(c.choices and c.choices[0].finish_reason for c in resp.parse())


def test_short_history_is_not_truncated(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="llava", messages=ask_about_image(), max_tokens=2
    )
    assert raw.headers[TRUNCATED_HEADER] == "0"
