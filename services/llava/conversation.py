"""From an OpenAI chat request to what a LLaVA model sees: validation, image policy, truncation.

Everything here is plain Python (no torch): it runs on the event loop before a request takes
an inference slot, so a bad request costs nothing, and it is shared by every backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from lvi.contracts.llava import ChatCompletionRequest, ImagePart, TextPart
from lvi.errors import BadRequest, LviError
from lvi.images import EncodedImage, ImageLimits, b64decode_payload

log = logging.getLogger("lvi.llava")

Role = Literal["system", "user", "assistant"]

OMITTED_IMAGE_NOTE = "(An earlier image was shown here; only the latest image is visible now.)"
"""Replaces older image parts under the ``latest`` image policy, so the text still says that
the user showed an image at that point of the conversation."""


@dataclass
class ImageRef:
    """An image of the conversation: checked bytes (data URI) or, if allowed, a URL to fetch."""

    param: str
    image: EncodedImage | None = None
    url: str | None = None
    index: int = 0  # position among the request's images


@dataclass
class Text:
    text: str


Part = Text | ImageRef


@dataclass
class Message:
    role: Role
    parts: list[Part]

    def images(self) -> list[ImageRef]:
        return [p for p in self.parts if isinstance(p, ImageRef)]


@dataclass
class ParsedChat:
    """A validated request: normalised messages plus the sampling parameters."""

    messages: list[Message]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    stop: list[str]
    stream: bool
    include_usage: bool
    request: ChatCompletionRequest = field(repr=False)

    @property
    def images(self) -> list[ImageRef]:
        return [img for m in self.messages for img in m.images()]


def _with_param(err: LviError, param: str) -> LviError:
    if err.param is None:
        err.param = param
    return err


def parse_image(url: str, param: str, *, allow_remote: bool, limits: ImageLimits) -> ImageRef:
    """Check one ``image_url``: a data URI is decoded and its header checked (not its pixels)."""
    if url.startswith("data:"):
        try:
            data = b64decode_payload(url, limits)
            return ImageRef(param, image=EncodedImage.from_bytes(data, limits, param=param))
        except LviError as e:
            raise _with_param(e, param) from None
    if url.startswith(("http://", "https://")):
        if allow_remote:
            return ImageRef(param, url=url)
        raise BadRequest(
            "This worker does not fetch image URLs; send the image inline as a data URI "
            "(data:image/png;base64,...). Operators may allow fetching with "
            "LLAVA_ALLOW_REMOTE_IMAGES=true.",
            code="remote_image_refused",
            param=param,
        )
    raise BadRequest(
        "image_url.url must be a data URI (data:image/png;base64,...).",
        code="invalid_image_url",
        param=param,
    )


def parse_request(
    req: ChatCompletionRequest,
    *,
    default_max_tokens: int,
    max_images: int,
    allow_remote: bool,
    limits: ImageLimits | None = None,
) -> ParsedChat:
    """Semantic checks the schema cannot express; raises 400/413/415 errors."""
    limits = limits or ImageLimits.from_env()
    messages: list[Message] = []
    n_images = 0
    for i, msg in enumerate(req.messages):
        role: Role = "system" if msg.role in ("system", "developer") else msg.role  # type: ignore[assignment]
        raw = (
            [TextPart(type="text", text=msg.content)]
            if isinstance(msg.content, str)
            else msg.content
        )
        parts: list[Part] = []
        for j, part in enumerate(raw):
            param = f"messages.{i}.content.{j}"
            if isinstance(part, TextPart):
                parts.append(Text(part.text))
                continue
            assert isinstance(part, ImagePart)
            if role != "user":
                raise BadRequest(
                    f"Only user messages may carry images (message {i} is '{msg.role}').",
                    code="image_not_allowed",
                    param=param,
                )
            n_images += 1
            if n_images > max_images:
                raise BadRequest(
                    f"Too many images: this worker accepts at most {max_images} per request.",
                    code="too_many_images",
                    param=param,
                )
            ref = parse_image(
                part.image_url.url,
                param + ".image_url.url",
                allow_remote=allow_remote,
                limits=limits,
            )
            ref.index = n_images - 1
            parts.append(ref)
        messages.append(Message(role, parts))
    if not any(m.role == "user" for m in messages):
        raise BadRequest(
            "messages must contain a user message.", code="no_user_message", param="messages"
        )
    return ParsedChat(
        messages=messages,
        max_tokens=req.requested_max_tokens() or default_max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        seed=req.seed,
        stop=req.stop_list(),
        stream=req.stream,
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        request=req,
    )


def apply_image_policy(messages: list[Message], policy: str) -> list[Message]:
    """``latest``: keep the pixels of the last image only, older ones become a text note.

    LLaVA-1.5 and LLaVA-NeXT were trained with one image per conversation and answer badly
    (or run out of context) with several, while a session often shows a new version of its
    image at each edit; the latest image is the one the user asks about. ``all`` keeps every
    image for multi-image models (LLaVA-Interleave, OneVision).
    """
    if policy == "all":
        return messages
    last = next((p for m in reversed(messages) for p in reversed(m.images())), None)
    return [
        Message(
            m.role,
            [
                Text(OMITTED_IMAGE_NOTE) if isinstance(p, ImageRef) and p is not last else p
                for p in m.parts
            ],
        )
        for m in messages
    ]


def template_messages(
    messages: list[Message], pixels: dict[int, Any] | None = None
) -> list[dict[str, Any]]:
    """Messages in the shape chat templates expect: content is a list of typed parts.

    Adjacent text parts are joined; system and assistant messages become one text part, since
    several templates read ``content[0]['text']`` for them. With ``pixels`` (id of an
    :class:`ImageRef` -> decoded image) each image part carries its image, for the processor.
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        content: list[dict[str, Any]] = []
        for p in m.parts:
            if isinstance(p, ImageRef):
                part: dict[str, Any] = {"type": "image"}
                if pixels is not None:
                    part["image"] = pixels[id(p)]
                content.append(part)
            elif content and content[-1]["type"] == "text":
                content[-1]["text"] += "\n" + p.text
            else:
                content.append({"type": "text", "text": p.text})
        if m.role != "user" and not content:
            content.append({"type": "text", "text": ""})
        out.append({"role": m.role, "content": content})
    return out


def split_turns(messages: list[Message]) -> tuple[list[Message], list[list[Message]]]:
    """System messages, and the rest grouped in turns: each user message starts a turn."""
    system = [m for m in messages if m.role == "system"]
    turns: list[list[Message]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "user" or not turns:
            turns.append([])
        turns[-1].append(m)
    return system, turns


def drop_oldest_turns(messages: list[Message], k: int) -> list[Message]:
    """The conversation without its ``k`` oldest turns, keeping system prompts and the latest
    image (moved into the first kept user message when its own turn is dropped)."""
    system, turns = split_turns(messages)
    if k <= 0:
        return messages
    kept = [Message(m.role, list(m.parts)) for t in turns[k:] for m in t]
    dropped_images = [p for t in turns[:k] for m in t for p in m.images()]
    kept_images = [p for m in kept for p in m.images()]
    if dropped_images and not kept_images:
        first_user = next(m for m in kept if m.role == "user")
        first_user.parts.insert(0, dropped_images[-1])
    return system + kept


def fit_to_context(
    messages: list[Message], count: Callable[[list[Message]], int], budget: int
) -> tuple[list[Message], int]:
    """Drop the fewest oldest turns so that ``count(messages) <= budget``.

    Returns the kept messages and the number of turns dropped. The latest turn is never
    dropped; if it alone does not fit, the request is refused (400) rather than cut mid-turn.
    """
    if count(messages) <= budget:
        return messages, 0
    _, turns = split_turns(messages)
    last = len(turns) - 1
    smallest = drop_oldest_turns(messages, last)
    need = count(smallest)
    if need > budget:
        raise BadRequest(
            f"The latest message needs {need} tokens (images included) but the model's context "
            f"leaves {budget} for the prompt. Send a shorter message or a lower max_tokens.",
            code="context_length_exceeded",
            param="messages",
        )
    # Fewer turns never means more tokens, so the first k that fits is found by bisection.
    lo, hi = 1, last  # count(drop k=hi) fits, count(drop k=0) does not
    while lo < hi:
        mid = (lo + hi) // 2
        if count(drop_oldest_turns(messages, mid)) <= budget:
            hi = mid
        else:
            lo = mid + 1
    return drop_oldest_turns(messages, lo), lo
