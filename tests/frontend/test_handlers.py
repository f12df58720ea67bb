"""The UI's logic over a fake gateway: fast, no browser, no servers."""

from __future__ import annotations

import asyncio
import base64
import functools
import io
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytest
from PIL import Image
from pydantic import BaseModel, ValidationError

from frontend.examples import example_paths, write_examples
from frontend.handlers import (
    TINY_BANNER,
    ChatParams,
    Controller,
    DiffusionParams,
    ImageFiles,
    UiState,
    boxes_and_phrases,
    describe_error,
    native_size,
    seed_or_none,
    split_phrases,
    stroke_png_b64,
)
from frontend.settings import FrontendSettings
from lvi.contracts.gateway import ServiceInfo, WorkerStatus
from lvi_client import APIConnectionError, RateLimitError, ServiceUnavailableError
from tests.frontend.fakes import FakeGateway


def threaded(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on its own loop in a worker thread: Playwright's sync API (the
    browser tests in this folder) leaves a loop running in the main thread, where neither
    anyio nor asyncio.run can start another."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, fn(*args, **kwargs)).result()

    return wrapper


PARK = str(example_paths()[0])  # 640x448; the red ball is at (330..420, 280..370)


async def _with_image(ctl: Controller) -> UiState:
    loaded = await ctl.open(None)
    state, _ = await ctl.upload(loaded.state, PARK)
    return state


# -- pure helpers ---------------------------------------------------------------------------
def test_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    s = FrontendSettings()
    assert (s.gateway_url, s.port, s.api_key) == ("http://127.0.0.1:8000", 7860, None)
    assert s.auth == "signin"  # every visitor signs in unless told otherwise
    monkeypatch.setenv("FRONTEND_GATEWAY_URL", "http://gw:9000")
    monkeypatch.setenv("FRONTEND_API_KEY", "k1")
    with pytest.raises(ValueError, match="FRONTEND_AUTH=single-user"):
        FrontendSettings()  # a shared key in a sign-in frontend is refused, not ignored
    monkeypatch.setenv("FRONTEND_AUTH", "single-user")
    monkeypatch.setenv("FRONTEND_PORT", "7999")
    s = FrontendSettings()
    assert s.gateway_url == "http://gw:9000" and s.port == 7999
    assert s.api_key is not None and s.api_key.get_secret_value() == "k1"
    assert "k1" not in repr(s)  # the key never shows in logs


def test_split_phrases() -> None:
    assert split_phrases(" a cat; a hat ;;\n a dog ") == ["a cat", "a hat", "a dog"]
    assert split_phrases(None) == []


def test_boxes_pair_with_labels_then_listed_phrases() -> None:
    value = {
        "image": None,
        "boxes": [  # newest first, as the annotator lists them
            {"xmin": 5, "ymin": 5, "xmax": 50, "ymax": 60, "label": "a hat"},
            {"xmin": 1, "ymin": 2, "xmax": 30, "ymax": 40, "label": ""},
        ],
    }
    boxes, phrases = boxes_and_phrases(value, "a cat; ignored")
    assert boxes == [[1, 2, 30, 40], [5, 5, 50, 60]]
    assert phrases == ["a cat", "a hat"]
    with pytest.raises(gr.Error, match="Box 1 has no phrase"):
        boxes_and_phrases(value, "")


def test_stroke_mask_from_editor_layers() -> None:
    assert stroke_png_b64(None, 10, 10) is None
    layer = np.zeros((8, 10, 4), np.uint8)
    assert stroke_png_b64({"layers": [layer]}, 10, 8) is None
    layer[2:4, 3:6, 3] = 255
    b64 = stroke_png_b64({"layers": [layer]}, 10, 8)
    assert b64 is not None
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))
    assert mask.shape == (8, 10) and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 255} and (mask > 0).sum() == 6
    # a canvas of another size is scaled to the image's size
    b64 = stroke_png_b64({"layers": [layer]}, 20, 16)
    assert Image.open(io.BytesIO(base64.b64decode(b64 or ""))).size == (20, 16)


def test_seed_and_params() -> None:
    assert seed_or_none(-1) is None and seed_or_none(None) is None and seed_or_none(7.0) == 7
    assert DiffusionParams(10, 5.0, None).kwargs() == {"steps": 10, "guidance_scale": 5.0}
    assert DiffusionParams(10, 5.0, 3).kwargs()["seed"] == 3


def test_errors_read_like_sentences() -> None:
    title, msg = describe_error(ServiceUnavailableError("The llava worker is unavailable."))
    assert title == "Service unavailable" and msg == "The llava worker is unavailable."
    title, msg = describe_error(APIConnectionError("Cannot reach: ConnectError(...)"))
    assert "cannot be reached" in msg and "ConnectError" not in msg
    err = RateLimitError("Too many requests.", headers={"retry-after": "3"})
    assert describe_error(err)[1] == "Too many requests. Try again in 3 s."

    class M(BaseModel):
        width: int

    with pytest.raises(ValidationError) as info:
        M(width="x")  # type: ignore[arg-type]
    title, msg = describe_error(info.value)
    assert title == "Invalid input" and msg.startswith("width:")


def test_examples_are_drawn_reproducibly(tmp_path: Path) -> None:
    written = write_examples(tmp_path)
    assert [p.name for p in written] == [p.name for p in example_paths()]
    for new, bundled in zip(written, example_paths(), strict=True):
        a = np.asarray(Image.open(new))
        b = np.asarray(Image.open(bundled))
        assert a.shape == b.shape and np.array_equal(a, b)


# -- the controller -------------------------------------------------------------------------
@threaded
async def test_open_creates_then_resumes(ctl: Controller, fake: FakeGateway) -> None:
    first = await ctl.open(None)
    assert first.banner == TINY_BANNER
    assert first.stored == {"session_id": first.state.session_id, "token": None}
    assert first.head.image is None and first.head.gallery == []
    _, view = await ctl.upload(first.state, PARK)
    assert view.image and (view.width, view.height) == (640, 448)
    again = await ctl.open(first.stored)
    assert again.state.session_id == first.state.session_id
    assert again.state.head == 1 and again.head.gallery[0][1] == "v1 upload (head)"
    # an expired or unknown session starts afresh instead of failing
    fresh = await ctl.open({"session_id": "gone"})
    assert fresh.state.session_id not in (None, "gone")


@threaded
async def test_no_banner_for_real_models(tmp_path: Path) -> None:
    ctl = Controller(FakeGateway(random_weights=False), ImageFiles(tmp_path))
    assert (await ctl.open(None)).banner is None


def _info(gligen_info: dict[str, Any] | None) -> ServiceInfo:
    worker = WorkerStatus(name="gligen", skill="generation", url="u", state="ready")
    worker.info = gligen_info
    return ServiceInfo(version="t", random_weights=False, profiles={}, limits={}, workers=[worker])


def test_generation_size_defaults_to_the_models_native_size() -> None:
    assert native_size(_info({"native_size": {"generate": 512, "inpaint": 512}})) == 512
    assert native_size(_info({"native_size": {"generate": 768}})) == 768
    assert native_size(_info({"native_size": {"generate": 64}})) == 256  # the sliders' minimum
    assert native_size(_info(None)) == 512  # the worker is down: SD's size
    assert native_size(_info({"native_size": "odd"})) == 512


@threaded
async def test_open_offers_the_native_size(tmp_path: Path) -> None:
    fake = FakeGateway()
    real_info = fake.info

    async def info() -> ServiceInfo:
        got = await real_info()
        return got.model_copy(update={"workers": _info({"native_size": {"generate": 768}}).workers})

    fake.info = info  # type: ignore[method-assign]
    assert (await Controller(fake, ImageFiles(tmp_path)).open(None)).gen_size == 768


@threaded
async def test_segment_by_box_and_click_then_remove_undo_redo(
    ctl: Controller, fake: FakeGateway
) -> None:
    state = await _with_image(ctl)
    box = {"image": None, "boxes": [{"xmin": 330, "ymin": 280, "xmax": 420, "ymax": 370}]}
    state, view = await ctl.segment(state, box_value=box)
    assert fake.calls[-1] == (
        "segment",
        {
            "points": None,
            "labels": None,
            "boxes": [[330.0, 280.0, 420.0, 370.0]],
            "stroke": None,
            "text": None,
            "merge": False,
        },
    )
    assert state.mask is not None and state.mask["bbox"] == [330, 280, 420, 370]
    mask, label = view.annotations[0]
    assert isinstance(mask, np.ndarray) and mask.shape == (448, 640) and label == "object"
    assert ctl.move_box(state)["boxes"][0]["xmin"] == 330  # type: ignore[index]

    state, view = await ctl.click(state, [100, 100], include=False)
    assert fake.calls[-1][1]["points"] == [[100.0, 100.0]]
    assert fake.calls[-1][1]["labels"] == [0]
    assert [lab for _, lab in view.annotations[1:]] == ["exclude"]

    events = []
    state, head = await ctl.remove(state, 12, events.append)
    assert fake.calls[-1][1]["dilate"] == 12 and fake.calls[-1][1]["if_match"] == 1
    assert events and events[-1].stage == "inpaint"
    assert state.head == 2 and state.mask is None and state.points == []
    assert head.can_undo and not head.can_redo and len(head.gallery) == 2
    state, head = await ctl.undo(state)
    assert state.head == 1 and head.can_redo
    state, head = await ctl.redo(state)
    assert state.head == 2
    state, head = await ctl.checkout_index(state, 0)
    assert state.head == 1 and head.selected == 0
    assert head.download and Path(head.download).name == "lvi-v1.png"
    assert Path(head.download).read_bytes() == Path(head.image or "").read_bytes()


@threaded
async def test_segment_needs_an_image_and_a_prompt(ctl: Controller) -> None:
    loaded = await ctl.open(None)
    with pytest.raises(gr.Error, match="Upload an image"):
        await ctl.segment(loaded.state)
    state = await _with_image(ctl)
    with pytest.raises(gr.Error, match="prompt"):
        await ctl.segment(state)
    with pytest.raises(gr.Error, match="Select an object"):
        await ctl.remove(state, 10)


@threaded
async def test_move_uses_the_dragged_box(ctl: Controller, fake: FakeGateway) -> None:
    state = await _with_image(ctl)
    box = {"image": None, "boxes": [{"xmin": 330, "ymin": 280, "xmax": 420, "ymax": 370}]}
    state, _ = await ctl.segment(state, box_value=box)
    not_moved = {"image": None, "boxes": [{"xmin": 330, "ymin": 280, "xmax": 420, "ymax": 370}]}
    with pytest.raises(gr.Error, match="Drag"):
        await ctl.move(state, not_moved, None, 10, DiffusionParams())
    dragged = {"image": None, "boxes": [{"xmin": 200, "ymin": 300, "xmax": 290, "ymax": 390}]}
    state, _ = await ctl.move(state, dragged, " a blue ball ", 4, DiffusionParams(5, 6.0, 9))
    op, kw = fake.calls[-1]
    assert (op, kw["dx"], kw["dy"], kw["phrase"], kw["dilate"]) == (
        "move",
        -130,
        20,
        "a blue ball",
        4,
    )
    assert (kw["steps"], kw["guidance_scale"], kw["seed"]) == (5, 6.0, 9)
    assert state.head == 2


@threaded
async def test_replace_inpaint_generate(ctl: Controller, fake: FakeGateway) -> None:
    state = await _with_image(ctl)
    box = {"image": None, "boxes": [{"xmin": 330, "ymin": 280, "xmax": 420, "ymax": 370}]}
    state, _ = await ctl.segment(state, box_value=box)
    with pytest.raises(gr.Error, match="what the object should become"):
        await ctl.replace_object(state, " ", False, DiffusionParams())
    state, _ = await ctl.replace_object(state, "a green apple", True, DiffusionParams())
    assert fake.calls[-1][1]["phrase"] == "a green apple" and fake.calls[-1][1]["use_mask"]

    boxes = {
        "image": None,
        "boxes": [  # newest first, as the annotator lists them
            {"xmin": 100, "ymin": 10, "xmax": 160, "ymax": 60, "label": ""},
            {"xmin": 10, "ymin": 10, "xmax": 60, "ymax": 60, "label": "a cat"},
        ],
    }
    events = []
    state, head = await ctl.inpaint(state, boxes, "x; a hat", "", DiffusionParams(), events.append)
    assert (
        fake.calls[-1][1]["phrases"] == ["a cat", "a hat"] and fake.calls[-1][1]["prompt"] is None
    )
    assert [e.step for e in events] == [1, 2, 3]
    assert head.summary.startswith("**v3** of 3 · inpaint")

    canvas = ctl.canvas(512, 256, None)
    assert Image.open(canvas["image"]).size == (512, 256) and canvas["boxes"] == []
    drawn = {
        "image": canvas["image"],
        "boxes": [{"xmin": 0, "ymin": 0, "xmax": 256, "ymax": 128, "label": "a dog"}],
    }
    bigger = ctl.canvas(1024, 512, drawn)
    assert bigger["boxes"][0]["xmax"] == 512 and bigger["boxes"][0]["label"] == "a dog"
    state, head = await ctl.generate(
        state, "a park", drawn, "", 1024, 512, 0.4, DiffusionParams(4, 7.5, 5)
    )
    kw = fake.calls[-1][1]
    assert kw["boxes"] == [[0, 0, 512, 256]]  # scaled from the 512x256 canvas to 1024x512
    assert (kw["width"], kw["height"], kw["scheduled_sampling_beta"], kw["seed"]) == (
        1024,
        512,
        0.4,
        5,
    )
    assert (head.width, head.height) == (1024, 512) and "seed 5" in head.summary
    with pytest.raises(gr.Error, match="Describe"):
        await ctl.generate(state, "", None, "", 512, 512, 0.3, DiffusionParams())


@threaded
async def test_chat_streams_and_errors_are_readable(ctl: Controller, fake: FakeGateway) -> None:
    state = await _with_image(ctl)
    seen = [h async for h in ctl.chat(state, "hello there", [], ChatParams(0.5, 0.9, 64))]
    assert len(seen) > 3  # the reply grows piece by piece
    assert seen[-1][-1] == {"role": "assistant", "content": "You said: hello there "}
    assert len(seen[-2][-1]["content"]) < len(seen[-1][-1]["content"]) or len(seen) > 2
    assert fake.calls[-1][1] == {
        "message": "hello there",
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 64,
    }
    assert (await ctl.open({"session_id": state.session_id})).chat[-1]["role"] == "assistant"

    fake.down.add("llava")
    with pytest.warns(UserWarning, match="The llava worker is unavailable."):
        seen = [h async for h in ctl.chat(state, "again", seen[-1], ChatParams())]
    # the conversation stays, the failure is noted in it
    assert seen[-1][-2] == {"role": "user", "content": "again\n\n*(on v1)*"}
    assert seen[-1][-1]["content"] == "⚠️ The llava worker is unavailable."
    assert len(seen[-1]) == 4


@threaded
async def test_api_callers_get_a_session_without_a_page_load(ctl: Controller) -> None:
    state, view = await ctl.upload(UiState(), PARK)
    assert state.session_id and view.image


@threaded
async def test_image_files_fetch_once(ctl: Controller, fake: FakeGateway, tmp_path: Path) -> None:
    state = await _with_image(ctl)
    gets = []
    original = fake.get_image

    async def counting(sid: str, version: int | str = "head") -> bytes:
        gets.append(version)
        return await original(sid, version)

    fake.get_image = counting  # type: ignore[method-assign]
    await ctl.refresh(state)
    await ctl.refresh(state)
    assert gets == []  # already cached by content hash
    files = ImageFiles(tmp_path / "small", max_files=2)
    for i in range(3):
        files.write(f"k{i}", b"x", ".png")
    assert sorted(p.name for p in (tmp_path / "small").iterdir()) == ["k1.png", "k2.png"]


@threaded
async def test_gateway_down_at_page_load_is_a_readable_error(tmp_path: Path) -> None:
    class Down(FakeGateway):
        async def create_session(self, title: str | None = None, **_: Any) -> Any:
            raise APIConnectionError("Cannot reach the gateway: ConnectError('refused')")

    with pytest.raises(gr.Error) as info:
        await Controller(Down(), ImageFiles(tmp_path)).open(None)
    assert info.value.title == "Gateway unreachable"
    assert "ConnectError" not in info.value.message


@threaded
async def test_clear_chat_forgets_the_conversation_in_the_gateway(
    ctl: Controller, fake: FakeGateway
) -> None:
    state = await _with_image(ctl)
    async for _ in ctl.chat(state, "hello", [], ChatParams()):
        pass
    assert (await fake.get_session(state.session_id)).messages
    assert await ctl.clear_chat(state) == []
    assert (await fake.get_session(state.session_id)).messages == []
    assert ("clear_messages", {}) in fake.calls


@threaded
async def test_a_stale_tab_refreshes_instead_of_failing(ctl: Controller, fake: FakeGateway) -> None:
    """Issue 14 point 7: an edit on a head another tab has moved (409 head_moved) shows the
    session's latest version instead of an error, and commits nothing."""
    stale = await _with_image(ctl)
    box = {"image": None, "boxes": [{"xmin": 330, "ymin": 280, "xmax": 420, "ymax": 370}]}
    stale, _ = await ctl.segment(stale, box_value=box)
    other = await ctl.upload(stale, str(example_paths()[1]))  # "another tab" moves the head
    assert other[0].head == 2
    state, head = await ctl.remove(stale, 10)  # If-Match: 1, the head is 2
    assert state.head == 2 and head.summary.startswith("**v2** of 2 · upload")
    assert len(fake.sessions[state.session_id or ""].versions) == 2  # nothing committed
