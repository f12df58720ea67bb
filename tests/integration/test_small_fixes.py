"""Issue 14, point 8: OpenAI's 404 for an unknown model, one step-0 event per stream."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest
from support import gw as img

from lvi_client import LviClient, ProgressEvent


def test_unknown_model_is_404_model_not_found(
    gateway_url: str, require: Callable[..., None]
) -> None:
    require("llava")
    client = openai.OpenAI(base_url=gateway_url + "/v1", api_key="alice-key", max_retries=0)
    msgs = [{"role": "user", "content": "Hello"}]
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-9-turbo", messages=msgs, max_tokens=2)  # type: ignore[arg-type]
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        list(
            client.chat.completions.create(
                model="gpt-9-turbo",
                messages=msgs,  # type: ignore[arg-type]
                max_tokens=2,
                stream=True,
            )
        )
    # The served id and the generic name "llava" both answer.
    served = client.models.list().data[0].id
    for name in {served, "llava"}:
        r = client.chat.completions.create(model=name, messages=msgs, max_tokens=2)  # type: ignore[arg-type]
        assert r.choices[0].message.role == "assistant"


@pytest.mark.parametrize("steps", [3, None])
def test_a_progress_stream_has_one_step_zero(
    alice: LviClient, require: Callable[..., None], steps: int | None
) -> None:
    require("gligen")
    s = alice.create_session()
    alice.upload_image(s.id, img.png(img.photo(64, 64)))
    events: list[ProgressEvent] = []
    kw = {"steps": steps} if steps else {}
    alice.generate(s.id, "a boat", width=64, height=64, on_progress=events.append, **kw)
    gen = [e for e in events if e.stage == "generate"]
    assert [e.step for e in gen].count(0) == 1
    numbered = [e.step for e in gen if e.step]
    assert numbered == list(range(1, len(numbered) + 1)) and numbered
