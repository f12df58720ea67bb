"""Contract of the llava worker: OpenAI-compatible chat completions with images.

Only the subset of OpenAI's schema that a LLaVA model can honour is accepted; unknown
fields are ignored (as OpenAI clients send extras), wrong values are refused. Images travel
as ``image_url`` parts whose URL is a ``data:`` URI.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

MAX_TEXT_CHARS = 32_000
MAX_MESSAGES = 256
MAX_STOP = 4
MAX_PARTS = 256


class TextPart(BaseModel):
    """A piece of text inside a message."""

    type: Literal["text"]
    text: str = Field(max_length=MAX_TEXT_CHARS)


class ImageURL(BaseModel):
    """Where an image is: a ``data:`` URI. http(s) URLs are refused unless the worker is
    configured to fetch them (``LLAVA_ALLOW_REMOTE_IMAGES``)."""

    url: str = Field(description="A data: URI (base64 PNG/JPEG/WebP).")
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(BaseModel):
    """An image inside a (user) message."""

    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


def _content_kind(value: Any) -> str:
    # Pick the branch up front so a bad part gets one precise error, not one per branch.
    return "str" if isinstance(value, str) else "list"


MessageContent = Annotated[
    Annotated[str, Field(max_length=MAX_TEXT_CHARS), Tag("str")]
    | Annotated[list[ContentPart], Field(max_length=MAX_PARTS), Tag("list")],
    Discriminator(_content_kind),
]


class ChatMessage(BaseModel):
    """One turn. ``content`` is a string or a list of text and image parts.

    ``developer`` (OpenAI's newer name for the system role) is treated as ``system``.
    """

    role: Literal["system", "developer", "user", "assistant"]
    content: MessageContent


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI ``POST /v1/chat/completions`` request, as far as a LLaVA model supports it."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    top_p: float = Field(0.7, gt=0.0, le=1.0)
    max_tokens: int | None = Field(512, ge=1, le=32_768)
    max_completion_tokens: int | None = Field(
        None, ge=1, le=32_768, description="OpenAI's newer name for max_tokens; wins when set."
    )
    stop: str | list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, max_length=MAX_STOP
    )
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    n: int = Field(1, ge=1, le=1, description="Only one choice is supported.")
    stream: bool = False
    stream_options: StreamOptions | None = None

    def stop_list(self) -> list[str]:
        """``stop`` as a list (OpenAI accepts one string or a list)."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def requested_max_tokens(self) -> int | None:
        """The reply-length cap the client asked for (``max_completion_tokens`` wins)."""
        return self.max_completion_tokens or self.max_tokens


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "cancelled"] | None = "stop"


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class ChatCompletionResponse(BaseModel):
    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length", "cancelled"] | None = None


class ChatCompletionChunk(BaseModel):
    """One SSE ``data:`` line of a streamed reply (the stream ends with ``data: [DONE]``)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "lvi"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


TRUNCATED_HEADER = "X-LVI-Truncated-Turns"
"""Response header: how many of the oldest turns were dropped to fit the model's context."""


# -- /v1/info ---------------------------------------------------------------------------------
Quantization = Literal["none", "8bit", "4bit"]
"""How the model's weights are held: as loaded (``none``), LLM.int8() or NF4 (bitsandbytes)."""


class LlavaInfo(BaseModel):
    """What the llava worker's ``GET /v1/info`` says about its model (besides the fields every
    worker reports: state, concurrency, queue). ``quantization`` is ``None`` when an upstream
    (``LLAVA_BACKEND=openai``) owns the model."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    backend: str
    model: str
    device: str
    dtype: str
    quantization: Quantization | None = None
