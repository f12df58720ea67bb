"""The gateway protocol the handlers call, and how its failures reach the user (``gr.Error``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import gradio as gr
from pydantic import ValidationError

from lvi.contracts.gateway import (
    Action,
    AuthToken,
    ChatDelta,
    ChatReply,
    MaskInfo,
    PlanReply,
    ProgressEvent,
    SegmentResult,
    ServiceInfo,
    Session,
    SessionPage,
    SessionSummary,
    Version,
    WhoAmI,
)
from lvi_client import (
    APIConnectionError,
    APIError,
    RateLimitError,
)

TINY_BANNER = (
    "**Random-weight models:** outputs are meaningless. This stack runs the `tiny` profile "
    "(for tests and offline machines); set `LVI_PROFILE=cpu` or `gpu` for real models."
)


def random_banner(info: ServiceInfo) -> str | None:
    """The banner for ``info``: None when every skill runs real models or classical methods;
    the skills whose models are random when the gateway names them (the local profile: only
    chat and generation), else :data:`TINY_BANNER`."""
    if not info.random_weights:
        return None
    if not info.random_skills:
        return TINY_BANNER
    return (
        f"**Random-weight models for {', '.join(info.random_skills)}:** those outputs are "
        "meaningless; the other skills give real results (GrabCut, OpenCV). Run "
        "`lvi models pull --profile gpu` on a GPU machine for real models everywhere."
    )


Progress = Callable[[ProgressEvent], None]
ChatHistory = list[dict[str, Any]]
MaskRef = str | Sequence[str]  # one mask id, or several edited together as their union


def _no_progress(_: ProgressEvent) -> None:
    return None


class Gateway(Protocol):
    """The part of :class:`lvi_client.AsyncLviClient` the UI uses (a fake can stand in)."""

    def with_api_key(
        self, api_key: str | None, *, headers: dict[str, str] | None = None
    ) -> Gateway: ...
    async def info(self) -> ServiceInfo: ...
    async def login(self, username: str, password: str) -> AuthToken: ...
    async def issue_token(self) -> AuthToken: ...
    async def logout(self) -> None: ...
    async def whoami(self) -> WhoAmI: ...
    async def create_session(self, title: str | None = None) -> Session: ...
    async def get_session(self, session_id: str) -> Session: ...
    async def list_sessions(self, *, limit: int = 20, cursor: str | None = None) -> SessionPage: ...
    async def rename_session(self, session_id: str, title: str | None) -> SessionSummary: ...
    async def delete_session(self, session_id: str) -> None: ...
    async def export_session(self, session_id: str) -> bytes: ...
    async def upload_image(self, session_id: str, image: bytes | str | Path) -> Version: ...
    async def get_image(self, session_id: str, version: int | str = "head") -> bytes: ...
    async def get_mask(self, session_id: str, mask_id: str) -> bytes: ...
    async def upload_mask(
        self, session_id: str, mask: bytes | str | Path, *, version: int | None = None
    ) -> MaskInfo: ...
    async def undo(self, session_id: str) -> Version: ...
    async def redo(self, session_id: str) -> Version: ...
    async def checkout(self, session_id: str, version: int) -> Version: ...
    async def segment(
        self,
        session_id: str,
        *,
        points: Sequence[Sequence[float]] | None = None,
        labels: Sequence[int] | None = None,
        boxes: Sequence[Sequence[float]] | None = None,
        stroke: str | None = None,
        text: str | None = None,
        merge: bool = True,
    ) -> SegmentResult: ...
    async def remove(self, session_id: str, mask_id: MaskRef, **kw: Any) -> Version: ...
    async def remove_preview(self, session_id: str, mask_id: MaskRef, **kw: Any) -> bytes: ...
    async def move(
        self, session_id: str, mask_id: MaskRef, dx: int, dy: int, **kw: Any
    ) -> Version: ...
    async def replace(
        self, session_id: str, mask_id: MaskRef, phrase: str, **kw: Any
    ) -> Version: ...
    async def inpaint(
        self, session_id: str, boxes: Sequence[Sequence[float]], phrases: Sequence[str], **kw: Any
    ) -> Version: ...
    async def generate(self, session_id: str, prompt: str, **kw: Any) -> Version: ...
    def chat_stream(
        self, session_id: str, message: str, **kw: Any
    ) -> AsyncIterator[ChatDelta | ChatReply | PlanReply | Action | ProgressEvent]: ...
    async def clear_messages(self, session_id: str) -> None: ...


# -- errors -----------------------------------------------------------------------------------
def describe_error(exc: BaseException) -> tuple[str, str]:
    """(title, message) a person can act on, from an SDK or validation error."""
    if isinstance(exc, APIConnectionError):
        return "Gateway unreachable", (
            "The gateway cannot be reached right now. Check that it is running, then try again."
        )
    if isinstance(exc, RateLimitError):
        return "Busy", f"{exc.message} Try again in {exc.retry_after:g} s."
    if isinstance(exc, APIError):
        title = {
            400: "Invalid request",
            401: "Not authorised",
            404: "Not found",
            409: "Conflict",
            413: "Too large",
            415: "Unsupported image",
            422: "Invalid input",
            503: "Service unavailable",
            504: "Timed out",
        }.get(exc.status, "Gateway error")
        return title, exc.message or f"The gateway answered {exc.status}."
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:3]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return "Invalid input", "; ".join(parts)
    return "Error", str(exc)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn gateway and validation errors into ``gr.Error`` (a readable toast, no trace)."""
    try:
        yield
    except gr.Error:
        raise
    except (APIError, ValidationError) as exc:
        title, message = describe_error(exc)
        raise gr.Error(message, title=title, print_exception=False) from None


def fail(message: str, title: str = "Cannot do that yet") -> gr.Error:
    """An error caused by the user's input (what to do next is in the message)."""
    return gr.Error(message, title=title, print_exception=False)
