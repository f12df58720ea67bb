"""Every call of the gateway's API, without I/O: how to send it and how to read its answer.

Each public function here builds a :class:`Call`: the request (method, path, body, headers)
plus how to parse the JSON answer, and, for a streamed call, how to read each server-sent
event. :mod:`lvi_client.client` binds these builders to a sync and an async transport, so
both clients share this one definition of the API (names, parameters, docstrings).

Over 400 lines on purpose: it is the whole public API, one short function per route (30), in
the order of docs/API.md; split, the one definition would be scattered again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
from httpx_sse import ServerSentEvent
from pydantic import BaseModel, ValidationError

from .errors import UnprocessableEntityError, error_from_envelope
from .models import (
    EVENT_STREAM,
    Action,
    AuthToken,
    ChatDelta,
    ChatReply,
    ChatRequest,
    Checkout,
    GenerateRequest,
    InpaintRequest,
    LoginRequest,
    MaskInfo,
    MoveRequest,
    PlanReply,
    PlanRequest,
    ProgressEvent,
    Readiness,
    RemoveRequest,
    ReplaceRequest,
    SegmentRequest,
    SegmentResult,
    ServiceInfo,
    Session,
    SessionCreate,
    SessionPage,
    SessionSummary,
    SessionUpdate,
    TokenRequest,
    Usage,
    Version,
    WhoAmI,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
ImageInput = bytes | str | Path
ProgressCallback = Callable[[ProgressEvent], None]
IfMatch = int | str | None
MaskRef = str | Sequence[str]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call, independent of sync/async: the request, and how to read the answer.

    ``event`` is set for a streamed call (``Accept: text/event-stream``): it turns each
    server-sent event into an item (None: nothing to hand out) or raises the streamed error.
    ``parse`` reads a JSON answer, which a streamed call can get too (a replayed request).
    """

    method: str
    path: str
    parse: Callable[[bytes], T]
    json_body: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    event: Callable[[ServerSentEvent], T | None] | None = None
    check: bool = True  # False: an error status is a normal answer (readiness)

    def request(self, auth: Mapping[str, str]) -> dict[str, Any]:
        """The keyword arguments of httpx's ``request`` and ``stream``."""
        return {
            "method": self.method,
            "url": self.path,
            "json": self.json_body,
            "content": self.content,
            "headers": {**auth, **self.headers},
            "params": self.params,
        }

    def answer(self, resp: httpx.Response) -> T:
        """A whole (read) answer: the typed error of its envelope, or the parsed body."""
        if self.check and resp.status_code >= 400:
            raise error_from_envelope(resp.status_code, resp.content, resp.headers)
        return self.parse(resp.content)

    def item(self, sse: ServerSentEvent) -> T | None:
        """One event of the stream as an item (None: none to hand out)."""
        assert self.event is not None
        return self.event(sse)


def is_event_stream(resp: httpx.Response) -> bool:
    """Is this a successful answer that streams events (not an error, not a JSON replay)?"""
    return resp.status_code < 400 and resp.headers.get("content-type", "").startswith(EVENT_STREAM)


STREAM_ENDED = "The stream ended without a result."


def connection_error_message(e: httpx.HTTPError, streaming: bool) -> str:
    """What :class:`~lvi_client.errors.APIConnectionError` says for a transport failure."""
    if streaming:
        return f"Connection to the gateway failed: {e!r}"
    return f"Cannot reach the gateway: {e!r}"


def client_headers(api_key: str | None) -> dict[str, str]:
    """Headers every call carries."""
    h = {"User-Agent": "lvi-client/1"}
    if api_key:
        h["Authorization"] = f"Bearer {api_key}"
    return h


# -- helpers ----------------------------------------------------------------------------------
def _read_image(image: ImageInput) -> bytes:
    if isinstance(image, bytes):
        return image
    return Path(image).read_bytes()


def _sniff_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _edit_headers(if_match: IfMatch, idempotency_key: str | None, stream: bool) -> dict[str, str]:
    h = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
    if if_match is not None:
        h["If-Match"] = f'"{if_match}"' if str(if_match) != "*" else "*"
    if stream:
        h["Accept"] = EVENT_STREAM
    return h


def _build(cls: type[M], **kw: Any) -> M:
    """Validate a request locally; a bad value raises the same typed error the gateway would
    (422) without a round trip."""
    try:
        return cls(**{k: v for k, v in kw.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        raise UnprocessableEntityError(
            f"{param + ': ' if param else ''}{first.get('msg', 'invalid value')}",
            status=422,
            type="invalid_request_error",
            code="validation_error",
            param=param,
        ) from None


def _nothing(_: bytes) -> None:
    return None


def _bytes(body: bytes) -> bytes:
    return body


def _post(
    path: str, parse: Callable[[bytes], T], body: BaseModel | dict[str, Any] | None, **kw: Any
) -> Call[T]:
    json_body = body.model_dump(exclude_none=True) if isinstance(body, BaseModel) else body
    return Call("POST", path, parse, json_body=json_body, **kw)


def _edit_event(on_progress: ProgressCallback) -> Callable[[ServerSentEvent], Version | None]:
    def event(sse: ServerSentEvent) -> Version | None:
        if sse.event == "progress":
            on_progress(ProgressEvent.model_validate_json(sse.data))
        elif sse.event == "result":
            return Version.model_validate_json(sse.data)
        elif sse.event == "error":
            raise error_from_envelope(None, sse.data)
        return None

    return event


ChatItem = ChatDelta | ChatReply | PlanReply | Action | ProgressEvent
"""What a streamed chat yields: with ``act``, the :class:`PlanReply`, each step's
:class:`ProgressEvent` (``action`` = its index) and :class:`Action`, then the text."""


def _chat_event(sse: ServerSentEvent) -> ChatItem | None:
    if sse.event == "delta":
        return ChatDelta.model_validate_json(sse.data)
    if sse.event == "done":
        return ChatReply.model_validate_json(sse.data)
    if sse.event == "plan":
        return PlanReply.model_validate_json(sse.data)
    if sse.event == "action":
        return Action.model_validate_json(sse.data)
    if sse.event == "progress":
        return ProgressEvent.model_validate_json(sse.data)
    if sse.event == "error":
        raise error_from_envelope(None, sse.data)
    return None


def _chat_reply(body: bytes) -> ChatItem:
    return ChatReply.model_validate_json(body)


def _mask_refs(mask: MaskRef) -> dict[str, Any]:
    """``mask_id`` for one id, ``mask_ids`` for a list (edited together as their union)."""
    return {"mask_id": mask} if isinstance(mask, str) else {"mask_ids": list(mask)}


def _edit(
    session_id: str,
    operation: str,
    req: BaseModel,
    if_match: IfMatch,
    idempotency_key: str | None,
    on_progress: ProgressCallback | None,
) -> Call[Version]:
    """An edit: a JSON answer, or with ``on_progress`` a stream of progress events."""
    return _post(
        f"/v1/sessions/{session_id}/{operation}",
        Version.model_validate_json,
        req,
        headers=_edit_headers(if_match, idempotency_key, on_progress is not None),
        event=_edit_event(on_progress) if on_progress is not None else None,
    )


# -- sign-in ----------------------------------------------------------------------------------
def login(username: str, password: str, *, ttl_s: int | None = None) -> Call[AuthToken]:
    """Sign in with a username and password: a bearer token for the user's principal
    (use it with :meth:`with_api_key`); 401 ``invalid_credentials`` when they do not match."""
    req = _build(LoginRequest, username=username, password=password, ttl_s=ttl_s)
    return _post("/v1/auth/login", AuthToken.model_validate_json, req)


def issue_token(*, ttl_s: int | None = None, principal: str | None = None) -> Call[AuthToken]:
    """Exchange this client's API key for a short-lived, revocable sign-in token; a delegate's
    key (GATEWAY_DELEGATES) may ask for one for another ``principal``."""
    req = _build(TokenRequest, ttl_s=ttl_s, principal=principal)
    return _post("/v1/auth/token", AuthToken.model_validate_json, req)


def logout() -> Call[None]:
    """Revoke the sign-in token this client presents (an API key cannot be revoked so)."""
    return Call("POST", "/v1/auth/logout", _nothing)


def whoami() -> Call[WhoAmI]:
    """The principal of this client's credentials (401 when they are not valid)."""
    return Call("GET", "/v1/auth/whoami", WhoAmI.model_validate_json)


# -- sessions ---------------------------------------------------------------------------------
def info() -> Call[ServiceInfo]:
    """Gateway limits and every worker's info (``random_weights`` for the tiny profile)."""
    return Call("GET", "/v1/info", ServiceInfo.model_validate_json)


def usage() -> Call[Usage]:
    """Where the caller stands against its quotas: bytes, live sessions, running long jobs."""
    return Call("GET", "/v1/usage", Usage.model_validate_json)


def ready() -> Call[Readiness]:
    """``GET /readyz`` (a 503 "not_ready" answer is returned, not raised)."""
    return Call("GET", "/readyz", Readiness.model_validate_json, check=False)


def create_session(
    title: str | None = None, *, idempotency_key: str | None = None
) -> Call[Session]:
    """A new, empty session."""
    body = SessionCreate(title=title)
    headers = _edit_headers(None, idempotency_key, False)
    return _post("/v1/sessions", Session.model_validate_json, body, headers=headers)


def get_session(session_id: str) -> Call[Session]:
    """The session: its versions, head, masks and messages."""
    return Call("GET", f"/v1/sessions/{session_id}", Session.model_validate_json)


def list_sessions(*, limit: int = 20, cursor: str | None = None) -> Call[SessionPage]:
    """A page of the caller's sessions, most recently changed first (pass the page's
    ``next_cursor`` as ``cursor`` for the next one)."""
    params: dict[str, Any] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    return Call("GET", "/v1/sessions", SessionPage.model_validate_json, params=params)


def rename_session(session_id: str, title: str | None) -> Call[SessionSummary]:
    """Set (or with ``None`` clear) the session's title."""
    # Checked locally ("" for None: _build drops None values); an explicit null clears it.
    _build(SessionUpdate, title=title if title is not None else "")
    body = {"title": title}
    return Call(
        "PATCH", f"/v1/sessions/{session_id}", SessionSummary.model_validate_json, json_body=body
    )


def export_session(session_id: str) -> Call[bytes]:
    """The whole session as zip bytes: versions/, masks/, session.json, chat.json, chat.md."""
    return Call("GET", f"/v1/sessions/{session_id}/export", _bytes)


def delete_session(session_id: str) -> Call[None]:
    """Delete the session and everything in it."""
    return Call("DELETE", f"/v1/sessions/{session_id}", _nothing)


def clear_messages(session_id: str) -> Call[None]:
    """Forget the session's chat history; versions and masks stay."""
    return Call("DELETE", f"/v1/sessions/{session_id}/messages", _nothing)


def upload_image(
    session_id: str,
    image: ImageInput,
    *,
    content_type: str | None = None,
    if_match: IfMatch = None,
    idempotency_key: str | None = None,
) -> Call[Version]:
    """Upload image bytes (or a file path) as a new version."""
    data = _read_image(image)
    headers = _edit_headers(if_match, idempotency_key, False)
    headers["Content-Type"] = content_type or _sniff_type(data)
    path = f"/v1/sessions/{session_id}/images"
    return _post(path, Version.model_validate_json, None, content=data, headers=headers)


def get_image(session_id: str, version: int | str = "head") -> Call[bytes]:
    """The bytes of one version's image (``"head"``: the current one)."""
    return Call("GET", f"/v1/sessions/{session_id}/images/{version}", _bytes)


def undo(
    session_id: str, *, if_match: IfMatch = None, idempotency_key: str | None = None
) -> Call[Version]:
    """Move the head to its parent (a retry with the same key does not undo twice)."""
    headers = _edit_headers(if_match, idempotency_key, False)
    return _post(
        f"/v1/sessions/{session_id}/undo", Version.model_validate_json, None, headers=headers
    )


def redo(
    session_id: str, *, if_match: IfMatch = None, idempotency_key: str | None = None
) -> Call[Version]:
    """Move the head forward again, to the version undo left."""
    headers = _edit_headers(if_match, idempotency_key, False)
    return _post(
        f"/v1/sessions/{session_id}/redo", Version.model_validate_json, None, headers=headers
    )


def checkout(session_id: str, version: int, *, if_match: IfMatch = None) -> Call[Version]:
    """Make ``version`` the head."""
    body = _build(Checkout, version=version).model_dump()
    headers = _edit_headers(if_match, None, False)
    path = f"/v1/sessions/{session_id}/checkout"
    return _post(path, Version.model_validate_json, body, headers=headers)


# -- chat -------------------------------------------------------------------------------------
def chat(
    session_id: str,
    message: str,
    *,
    act: bool = False,
    if_match: IfMatch = None,
    idempotency_key: str | None = None,
    **params: Any,
) -> Call[ChatReply]:
    """One turn about the head image (``temperature``, ``top_p``, ``max_tokens``, ``seed``).

    ``act=True``: the message may also edit the image ("remove the dog", "undo"), with the
    visual prompts sent along (``points``/``labels``, ``boxes``, ``stroke``, ``mask_id``);
    the reply's ``actions`` say what was done, ``clarification`` what was asked back.
    ``if_match`` (act only) is the head the first step must start from.
    """
    req = _build(ChatRequest, message=message, stream=False, act=act, **params)
    headers = _edit_headers(if_match if act else None, idempotency_key, False)
    path = f"/v1/sessions/{session_id}/chat"
    return _post(path, ChatReply.model_validate_json, req, headers=headers)


def chat_stream(
    session_id: str,
    message: str,
    *,
    act: bool = False,
    if_match: IfMatch = None,
    idempotency_key: str | None = None,
    **params: Any,
) -> Call[ChatItem]:
    """Yield :class:`ChatDelta` pieces, then the stored :class:`ChatReply`; with ``act``
    first the :class:`PlanReply`, then each step's :class:`ProgressEvent` and
    :class:`Action`."""
    req = _build(ChatRequest, message=message, stream=True, act=act, **params)
    headers = _edit_headers(if_match if act else None, idempotency_key, True)
    path = f"/v1/sessions/{session_id}/chat"
    return _post(path, _chat_reply, req, headers=headers, event=_chat_event)


def plan(
    session_id: str,
    message: str,
    *,
    points: Sequence[Sequence[float]] | None = None,
    labels: Sequence[int] | None = None,
    boxes: Sequence[Sequence[float]] | None = None,
    stroke: str | None = None,
    mask_id: str | None = None,
) -> Call[PlanReply]:
    """What ``chat(..., act=True)`` would do with ``message``, as a dry run (changes
    nothing): the steps (``tool``, ``args``), or the question it would ask back."""
    prompt = {"points": points, "labels": labels, "boxes": boxes, "stroke": stroke}
    req = _build(PlanRequest, message=message, mask_id=mask_id, **prompt)
    path = f"/v1/sessions/{session_id}/plan"
    return _post(path, PlanReply.model_validate_json, req)


# -- masks ------------------------------------------------------------------------------------
def segment(
    session_id: str,
    *,
    points: Sequence[Sequence[float]] | None = None,
    labels: Sequence[int] | None = None,
    boxes: Sequence[Sequence[float]] | None = None,
    stroke: str | None = None,
    text: str | None = None,
    dilate: int = 0,
    merge: bool = True,
    max_instances: int | None = None,
    idempotency_key: str | None = None,
) -> Call[SegmentResult]:
    """A mask from clicks (``labels``: 1 include, 0 exclude), boxes, a scribble or text.
    With ``merge=False``, one mask per object (box, text instance) in ``instances``."""
    prompt = {"points": points, "labels": labels, "boxes": boxes, "stroke": stroke, "text": text}
    req = _build(SegmentRequest, dilate=dilate, merge=merge, max_instances=max_instances, **prompt)
    headers = _edit_headers(None, idempotency_key, False)
    path = f"/v1/sessions/{session_id}/segment"
    return _post(path, SegmentResult.model_validate_json, req, headers=headers)


def upload_mask(
    session_id: str,
    mask: ImageInput,
    *,
    version: int | None = None,
    idempotency_key: str | None = None,
) -> Call[MaskInfo]:
    """A mask the user painted: single-channel PNG (white = inside), the image's size."""
    headers = _edit_headers(None, idempotency_key, False)
    headers["Content-Type"] = "image/png"
    return _post(
        f"/v1/sessions/{session_id}/masks",
        MaskInfo.model_validate_json,
        None,
        content=_read_image(mask),
        headers=headers,
        params={"version": version} if version is not None else None,
    )


def get_mask(session_id: str, mask_id: str) -> Call[bytes]:
    """The mask's PNG bytes."""
    return Call("GET", f"/v1/sessions/{session_id}/masks/{mask_id}", _bytes)


# -- edits ------------------------------------------------------------------------------------
def remove(
    session_id: str,
    mask_id: MaskRef,
    *,
    if_match: IfMatch = None,
    idempotency_key: str | None = None,
    on_progress: ProgressCallback | None = None,
    **params: Any,
) -> Call[Version]:
    """Fill the masked objects' place (``dilate`` pixels more); ``mask_id`` may be a list."""
    req = _build(RemoveRequest, **_mask_refs(mask_id), **params)
    return _edit(session_id, "remove", req, if_match, idempotency_key, on_progress)


def remove_preview(
    session_id: str, mask_id: MaskRef, *, if_match: IfMatch = None, **params: Any
) -> Call[bytes]:
    """What ``remove`` would make, as PNG bytes; nothing is committed."""
    req = _build(RemoveRequest, **_mask_refs(mask_id), preview=True, **params)
    headers = _edit_headers(if_match, None, False)
    return _post(f"/v1/sessions/{session_id}/remove", _bytes, req, headers=headers)


def move(
    session_id: str,
    mask_id: MaskRef,
    dx: int,
    dy: int,
    *,
    phrase: str | None = None,
    if_match: IfMatch = None,
    idempotency_key: str | None = None,
    on_progress: ProgressCallback | None = None,
    **params: Any,
) -> Call[Version]:
    """Move the object by (dx, dy): its own pixels, or regenerated from ``phrase``."""
    req = _build(MoveRequest, **_mask_refs(mask_id), dx=dx, dy=dy, phrase=phrase, **params)
    return _edit(session_id, "move", req, if_match, idempotency_key, on_progress)


def replace(
    session_id: str,
    mask_id: MaskRef,
    phrase: str,
    *,
    if_match: IfMatch = None,
    idempotency_key: str | None = None,
    on_progress: ProgressCallback | None = None,
    **params: Any,
) -> Call[Version]:
    """Regenerate the object inside its box from a new ``phrase`` (GLIGEN)."""
    req = _build(ReplaceRequest, **_mask_refs(mask_id), phrase=phrase, **params)
    return _edit(session_id, "replace", req, if_match, idempotency_key, on_progress)


def inpaint(
    session_id: str,
    boxes: Sequence[Sequence[float]],
    phrases: Sequence[str],
    *,
    if_match: IfMatch = None,
    idempotency_key: str | None = None,
    on_progress: ProgressCallback | None = None,
    **params: Any,
) -> Call[Version]:
    """Add new objects: one phrase per box (pixels of the head image)."""
    req = _build(InpaintRequest, boxes=[list(b) for b in boxes], phrases=list(phrases), **params)
    return _edit(session_id, "inpaint", req, if_match, idempotency_key, on_progress)


def generate(
    session_id: str,
    prompt: str,
    *,
    if_match: IfMatch = None,
    idempotency_key: str | None = None,
    on_progress: ProgressCallback | None = None,
    **params: Any,
) -> Call[Version]:
    """A new image from a caption (``boxes``/``phrases`` in output pixels, ``width``...)."""
    req = _build(GenerateRequest, prompt=prompt, **params)
    return _edit(session_id, "generate", req, if_match, idempotency_key, on_progress)
