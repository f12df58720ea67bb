"""Client SDK of the gateway's public API, sync (:class:`LviClient`) and async
(:class:`AsyncLviClient`), plus the small SSE decoder both the SDK and the gateway use.

    from lvi.client import LviClient

    with LviClient("http://127.0.0.1:8000", api_key="...") as lvi:
        s = lvi.create_session()
        v1 = lvi.upload_image(s.id, Path("cat.jpg"))
        mask = lvi.segment(s.id, points=[[120, 80]])
        v2 = lvi.remove(s.id, mask.mask_id, if_match=v1.id)
        png = lvi.get_image(s.id, "head")
        for event in lvi.chat_stream(s.id, "What changed?"):
            ...

Every error the gateway sends (the ``{"error": {...}}`` envelope) is raised as a typed
:class:`APIError` subclass chosen by status (``NotFoundError``, ``ConflictError``,
``RateLimitError`` with ``retry_after``, ``ServiceUnavailableError``...). Network failures
raise :class:`APIConnectionError`. Every state-changing POST carries an ``Idempotency-Key``
(generated unless given), so a caller may safely repeat a call that failed in transit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Sequence
from contextlib import aclosing, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from lvi.contracts.gateway import (
    EVENT_STREAM,
    ChatDelta,
    ChatReply,
    ChatRequest,
    Checkout,
    GenerateRequest,
    InpaintRequest,
    MaskInfo,
    MoveRequest,
    ProgressEvent,
    Readiness,
    RemoveRequest,
    ReplaceRequest,
    SegmentRequest,
    ServiceInfo,
    Session,
    SessionCreate,
    Version,
)

T = TypeVar("T")
ImageInput = bytes | str | Path
ProgressCallback = Callable[[ProgressEvent], None]


# -- server-sent events -------------------------------------------------------------------
@dataclass
class SSEEvent:
    """One server-sent event."""

    event: str = "message"
    data: str = ""
    id: str | None = None


@dataclass
class SSEDecoder:
    """Incremental SSE parser (the WHATWG rules that matter here): feed it lines without
    their newline, it returns the events that a blank line completes. Comments (``:``) such
    as keep-alive pings are skipped."""

    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _id: str | None = None

    def feed(self, line: str) -> list[SSEEvent]:
        line = line.rstrip("\r\n")
        if not line:
            if not self._data and not self._event:
                return []
            ev = SSEEvent(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data = "", []
            return [ev]
        if line.startswith(":"):
            return []
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return []


# -- errors -------------------------------------------------------------------------------
class APIError(Exception):
    """An error answer of the gateway (the envelope), or a failure to reach it."""

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str = "error",
        code: str = "error",
        param: str | None = None,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.headers = headers or {}

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class APIConnectionError(APIError):
    """The gateway could not be reached (or the connection broke)."""


class BadRequestError(APIError):
    status = 400


class AuthenticationError(APIError):
    status = 401


class PermissionDeniedError(APIError):
    status = 403


class NotFoundError(APIError):
    status = 404


class ConflictError(APIError):
    """409: the head moved (If-Match), nothing to undo, a cap reached, a key in use."""

    status = 409


class PayloadTooLargeError(APIError):
    status = 413


class UnsupportedMediaTypeError(APIError):
    status = 415


class UnprocessableEntityError(APIError):
    status = 422


class RateLimitError(APIError):
    """429; ``retry_after`` is the number of seconds the gateway asked to wait."""

    status = 429

    @property
    def retry_after(self) -> float:
        try:
            return float(self.headers.get("retry-after", "1"))
        except ValueError:
            return 1.0


class InternalServerError(APIError):
    status = 500


class BadGatewayError(APIError):
    status = 502


class ServiceUnavailableError(APIError):
    """503: Redis or a worker is unavailable; ``param`` names the worker when it is one."""

    status = 503


class GatewayTimeoutError(APIError):
    status = 504


_BY_STATUS: dict[int, type[APIError]] = {
    c.status: c
    for c in (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        PayloadTooLargeError,
        UnsupportedMediaTypeError,
        UnprocessableEntityError,
        RateLimitError,
        InternalServerError,
        BadGatewayError,
        ServiceUnavailableError,
        GatewayTimeoutError,
    )
}
_STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limit_error": 429,
    "upstream_error": 502,
    "service_unavailable": 503,
    "timeout_error": 504,
}


def error_from_envelope(
    status: int | None, body: bytes | str, headers: dict[str, str] | None = None
) -> APIError:
    """Build the typed error for an envelope (``status`` None: guess it from the type, as
    for an ``event: error`` in a stream)."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    try:
        err = json.loads(body)["error"]
        message = str(err.get("message", ""))
        etype, code, param = str(err.get("type", "error")), str(err.get("code", "error")), None
        param = err.get("param")
    except (ValueError, KeyError, TypeError):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        message, etype, code, param = text[:500] or "Unknown error.", "error", "error", None
    if status is None:
        status = _STATUS_BY_TYPE.get(etype, 500)
    cls = _BY_STATUS.get(status) or (InternalServerError if status >= 500 else APIError)
    return cls(
        message,
        status=status,
        type=etype,
        code=code,
        param=param,
        request_id=headers.get("x-request-id"),
        headers=headers,
    )


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        raise error_from_envelope(resp.status_code, resp.content, dict(resp.headers))


# -- request building (shared by the sync and async clients) -------------------------------
@dataclass
class _Call(Generic[T]):
    """One API call, independent of sync/async: how to send it and how to read the answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json_body: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    stream: bool = False


def _model(cls: type[BaseModel]) -> Callable[[httpx.Response], Any]:
    return lambda r: cls.model_validate_json(r.content)


def _nothing(_: httpx.Response) -> None:
    return None


def _bytes(r: httpx.Response) -> bytes:
    return r.content


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


def _edit_headers(
    if_match: int | str | None, idempotency_key: str | None, stream: bool
) -> dict[str, str]:
    h = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
    if if_match is not None:
        h["If-Match"] = f'"{if_match}"' if str(if_match) != "*" else "*"
    if stream:
        h["Accept"] = EVENT_STREAM
    return h


class _Calls:
    """Builders of every call of the public API."""

    @staticmethod
    def info() -> _Call[ServiceInfo]:
        return _Call("GET", "/v1/info", _model(ServiceInfo))

    @staticmethod
    def ready() -> _Call[Readiness]:
        def parse(r: httpx.Response) -> Readiness:
            return Readiness.model_validate_json(r.content)

        return _Call("GET", "/readyz", parse)

    @staticmethod
    def create_session(title: str | None, idempotency_key: str | None) -> _Call[Session]:
        return _Call(
            "POST",
            "/v1/sessions",
            _model(Session),
            json_body=SessionCreate(title=title).model_dump(exclude_none=True),
            headers=_edit_headers(None, idempotency_key, False),
        )

    @staticmethod
    def get_session(sid: str) -> _Call[Session]:
        return _Call("GET", f"/v1/sessions/{sid}", _model(Session))

    @staticmethod
    def delete_session(sid: str) -> _Call[None]:
        return _Call("DELETE", f"/v1/sessions/{sid}", _nothing)

    @staticmethod
    def clear_messages(sid: str) -> _Call[None]:
        return _Call("DELETE", f"/v1/sessions/{sid}/messages", _nothing)

    @staticmethod
    def upload_image(
        sid: str,
        image: ImageInput,
        content_type: str | None,
        if_match: int | str | None,
        idempotency_key: str | None,
    ) -> _Call[Version]:
        data = _read_image(image)
        headers = _edit_headers(if_match, idempotency_key, False)
        headers["Content-Type"] = content_type or _sniff_type(data)
        return _Call(
            "POST", f"/v1/sessions/{sid}/images", _model(Version), content=data, headers=headers
        )

    @staticmethod
    def get_image(sid: str, version: int | str) -> _Call[bytes]:
        return _Call("GET", f"/v1/sessions/{sid}/images/{version}", _bytes)

    @staticmethod
    def move_head(
        sid: str, action: str, body: Any, if_match: int | str | None, key: str | None
    ) -> _Call[Version]:
        return _Call(
            "POST",
            f"/v1/sessions/{sid}/{action}",
            _model(Version),
            json_body=body,
            headers=_edit_headers(if_match, key, False),
        )

    @staticmethod
    def chat(sid: str, req: ChatRequest, key: str | None) -> _Call[ChatReply]:
        return _Call(
            "POST",
            f"/v1/sessions/{sid}/chat",
            _model(ChatReply),
            json_body=req.model_dump(exclude_none=True),
            headers=_edit_headers(None, key, req.stream),
            stream=req.stream,
        )

    @staticmethod
    def segment(sid: str, req: SegmentRequest, key: str | None) -> _Call[MaskInfo]:
        return _Call(
            "POST",
            f"/v1/sessions/{sid}/segment",
            _model(MaskInfo),
            json_body=req.model_dump(exclude_none=True),
            headers=_edit_headers(None, key, False),
        )

    @staticmethod
    def upload_mask(
        sid: str, mask: ImageInput, version: int | None, key: str | None
    ) -> _Call[MaskInfo]:
        headers = _edit_headers(None, key, False)
        headers["Content-Type"] = "image/png"
        return _Call(
            "POST",
            f"/v1/sessions/{sid}/masks",
            _model(MaskInfo),
            content=_read_image(mask),
            headers=headers,
            params={"version": version} if version is not None else None,
        )

    @staticmethod
    def get_mask(sid: str, mask_id: str) -> _Call[bytes]:
        return _Call("GET", f"/v1/sessions/{sid}/masks/{mask_id}", _bytes)

    @staticmethod
    def edit(
        sid: str,
        operation: str,
        req: BaseModel,
        if_match: int | str | None,
        key: str | None,
        stream: bool,
    ) -> _Call[Version]:
        return _Call(
            "POST",
            f"/v1/sessions/{sid}/{operation}",
            _model(Version),
            json_body=req.model_dump(exclude_none=True),
            headers=_edit_headers(if_match, key, stream),
            stream=stream,
        )


def _edit_event(ev: SSEEvent) -> ProgressEvent | Version | None:
    if ev.event == "progress":
        return ProgressEvent.model_validate_json(ev.data)
    if ev.event == "result":
        return Version.model_validate_json(ev.data)
    if ev.event == "error":
        raise error_from_envelope(None, ev.data)
    return None


def _chat_event(ev: SSEEvent) -> ChatDelta | ChatReply | None:
    if ev.event == "delta":
        return ChatDelta.model_validate_json(ev.data)
    if ev.event == "done":
        return ChatReply.model_validate_json(ev.data)
    if ev.event == "error":
        raise error_from_envelope(None, ev.data)
    return None


def _headers(api_key: str | None) -> dict[str, str]:
    h = {"User-Agent": "lvi-client/1"}
    if api_key:
        h["Authorization"] = f"Bearer {api_key}"
    return h


M = TypeVar("M", bound=BaseModel)


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


def _segment_request(**kw: Any) -> SegmentRequest:
    return _build(SegmentRequest, **kw)


# -- sync client --------------------------------------------------------------------------
class LviClient:
    """Synchronous client. ``transport`` may be any httpx transport (tests: ASGITransport)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 600.0,
        connect_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        """``http_client`` replaces the built-in client (e.g. Starlette's TestClient)."""
        self._http = http_client or httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport or httpx.HTTPTransport(retries=connect_retries),
        )
        self._auth = _headers(api_key)

    def __enter__(self) -> LviClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call[T]) -> T:
        try:
            resp = self._http.request(
                call.method,
                call.path,
                json=call.json_body,
                content=call.content,
                headers={**self._auth, **call.headers},
                params=call.params,
            )
        except httpx.HTTPError as e:
            raise APIConnectionError(f"Cannot reach the gateway: {e!r}") from e
        _raise_for(resp)
        return call.parse(resp)

    def _events(self, call: _Call[Any]) -> Generator[SSEEvent, None, None]:
        try:
            with self._http.stream(
                call.method, call.path, json=call.json_body, headers={**self._auth, **call.headers}
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    _raise_for(resp)
                if not resp.headers.get("content-type", "").startswith(EVENT_STREAM):
                    # A replayed request (Idempotency-Key) may answer with plain JSON.
                    resp.read()
                    yield SSEEvent("json", resp.text)
                    return
                decoder = SSEDecoder()
                for line in resp.iter_lines():
                    yield from decoder.feed(line)
        except httpx.HTTPError as e:
            raise APIConnectionError(f"Connection to the gateway failed: {e!r}") from e

    # sessions
    def info(self) -> ServiceInfo:
        """Gateway limits and every worker's info (``random_weights`` for the tiny profile)."""
        return self._send(_Calls.info())

    def ready(self) -> Readiness:
        try:
            resp = self._http.get("/readyz", headers=self._auth)
        except httpx.HTTPError as e:
            raise APIConnectionError(f"Cannot reach the gateway: {e!r}") from e
        return Readiness.model_validate_json(resp.content)

    def create_session(
        self, title: str | None = None, *, idempotency_key: str | None = None
    ) -> Session:
        return self._send(_Calls.create_session(title, idempotency_key))

    def get_session(self, session_id: str) -> Session:
        return self._send(_Calls.get_session(session_id))

    def delete_session(self, session_id: str) -> None:
        self._send(_Calls.delete_session(session_id))

    def clear_messages(self, session_id: str) -> None:
        """Forget the session's chat history; versions and masks stay."""
        self._send(_Calls.clear_messages(session_id))

    def upload_image(
        self,
        session_id: str,
        image: ImageInput,
        *,
        content_type: str | None = None,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
    ) -> Version:
        """Upload image bytes (or a file path) as a new version."""
        return self._send(
            _Calls.upload_image(session_id, image, content_type, if_match, idempotency_key)
        )

    def get_image(self, session_id: str, version: int | str = "head") -> bytes:
        return self._send(_Calls.get_image(session_id, version))

    def undo(
        self,
        session_id: str,
        *,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
    ) -> Version:
        """Move the head to its parent (a retry with the same key does not undo twice)."""
        return self._send(_Calls.move_head(session_id, "undo", None, if_match, idempotency_key))

    def redo(
        self,
        session_id: str,
        *,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
    ) -> Version:
        return self._send(_Calls.move_head(session_id, "redo", None, if_match, idempotency_key))

    def checkout(
        self, session_id: str, version: int, *, if_match: int | str | None = None
    ) -> Version:
        body = _build(Checkout, version=version).model_dump()
        return self._send(_Calls.move_head(session_id, "checkout", body, if_match, None))

    # chat
    def chat(
        self, session_id: str, message: str, *, idempotency_key: str | None = None, **params: Any
    ) -> ChatReply:
        """One turn about the head image (``temperature``, ``top_p``, ``max_tokens``, ``seed``)."""
        req = _build(ChatRequest, message=message, stream=False, **params)
        return self._send(_Calls.chat(session_id, req, idempotency_key))

    def chat_stream(
        self, session_id: str, message: str, *, idempotency_key: str | None = None, **params: Any
    ) -> Iterator[ChatDelta | ChatReply]:
        """Yield :class:`ChatDelta` pieces, then the stored :class:`ChatReply`."""
        req = _build(ChatRequest, message=message, stream=True, **params)
        for ev in self._events(_Calls.chat(session_id, req, idempotency_key)):
            if ev.event == "json":
                yield ChatReply.model_validate_json(ev.data)
                continue
            item = _chat_event(ev)
            if item is not None:
                yield item

    # masks
    def segment(
        self,
        session_id: str,
        *,
        points: Sequence[Sequence[float]] | None = None,
        labels: Sequence[int] | None = None,
        boxes: Sequence[Sequence[float]] | None = None,
        stroke: str | None = None,
        text: str | None = None,
        dilate: int = 0,
        idempotency_key: str | None = None,
    ) -> MaskInfo:
        req = _segment_request(
            points=points, labels=labels, boxes=boxes, stroke=stroke, text=text, dilate=dilate
        )
        return self._send(_Calls.segment(session_id, req, idempotency_key))

    def upload_mask(
        self,
        session_id: str,
        mask: ImageInput,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> MaskInfo:
        """A mask the user painted: single-channel PNG (white = inside), the image's size."""
        return self._send(_Calls.upload_mask(session_id, mask, version, idempotency_key))

    def get_mask(self, session_id: str, mask_id: str) -> bytes:
        return self._send(_Calls.get_mask(session_id, mask_id))

    # edits
    def _edit(
        self,
        session_id: str,
        operation: str,
        req: BaseModel,
        if_match: int | str | None,
        idempotency_key: str | None,
        on_progress: ProgressCallback | None,
    ) -> Version:
        call = _Calls.edit(
            session_id, operation, req, if_match, idempotency_key, on_progress is not None
        )
        if on_progress is None:
            return self._send(call)
        with closing(self._events(call)) as events:
            for ev in events:
                if ev.event == "json":
                    return Version.model_validate_json(ev.data)
                item = _edit_event(ev)
                if isinstance(item, Version):
                    return item
                if item is not None:
                    on_progress(item)
        raise APIConnectionError("The stream ended without a result.")

    def remove(
        self,
        session_id: str,
        mask_id: str,
        *,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
        **params: Any,
    ) -> Version:
        """Fill the masked object's place (``dilate`` pixels more)."""
        req = _build(RemoveRequest, mask_id=mask_id, **params)
        return self._edit(session_id, "remove", req, if_match, idempotency_key, on_progress)

    def move(
        self,
        session_id: str,
        mask_id: str,
        dx: int,
        dy: int,
        *,
        phrase: str | None = None,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
        **params: Any,
    ) -> Version:
        """Move the object by (dx, dy): its own pixels, or regenerated from ``phrase``."""
        req = _build(MoveRequest, mask_id=mask_id, dx=dx, dy=dy, phrase=phrase, **params)
        return self._edit(session_id, "move", req, if_match, idempotency_key, on_progress)

    def replace(
        self,
        session_id: str,
        mask_id: str,
        phrase: str,
        *,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
        **params: Any,
    ) -> Version:
        req = _build(ReplaceRequest, mask_id=mask_id, phrase=phrase, **params)
        return self._edit(session_id, "replace", req, if_match, idempotency_key, on_progress)

    def inpaint(
        self,
        session_id: str,
        boxes: Sequence[Sequence[float]],
        phrases: Sequence[str],
        *,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
        **params: Any,
    ) -> Version:
        """Add new objects: one phrase per box (pixels of the head image)."""
        req = _build(
            InpaintRequest, boxes=[list(b) for b in boxes], phrases=list(phrases), **params
        )
        return self._edit(session_id, "inpaint", req, if_match, idempotency_key, on_progress)

    def generate(
        self,
        session_id: str,
        prompt: str,
        *,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
        **params: Any,
    ) -> Version:
        """A new image from a caption (``boxes``/``phrases`` in output pixels, ``width``...)."""
        req = _build(GenerateRequest, prompt=prompt, **params)
        return self._edit(session_id, "generate", req, if_match, idempotency_key, on_progress)


# -- async client -------------------------------------------------------------------------
class AsyncLviClient:
    """Asynchronous client with the same methods as :class:`LviClient`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 600.0,
        connect_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._http = http_client or httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport or httpx.AsyncHTTPTransport(retries=connect_retries),
        )
        self._auth = _headers(api_key)

    async def __aenter__(self) -> AsyncLviClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call[T]) -> T:
        try:
            resp = await self._http.request(
                call.method,
                call.path,
                json=call.json_body,
                content=call.content,
                headers={**self._auth, **call.headers},
                params=call.params,
            )
        except httpx.HTTPError as e:
            raise APIConnectionError(f"Cannot reach the gateway: {e!r}") from e
        _raise_for(resp)
        return call.parse(resp)

    async def _events(self, call: _Call[Any]) -> AsyncGenerator[SSEEvent, None]:
        try:
            async with self._http.stream(
                call.method, call.path, json=call.json_body, headers={**self._auth, **call.headers}
            ) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    _raise_for(resp)
                if not resp.headers.get("content-type", "").startswith(EVENT_STREAM):
                    await resp.aread()
                    yield SSEEvent("json", resp.text)
                    return
                decoder = SSEDecoder()
                async for line in resp.aiter_lines():
                    for ev in decoder.feed(line):
                        yield ev
        except httpx.HTTPError as e:
            raise APIConnectionError(f"Connection to the gateway failed: {e!r}") from e

    async def info(self) -> ServiceInfo:
        return await self._send(_Calls.info())

    async def ready(self) -> Readiness:
        try:
            resp = await self._http.get("/readyz", headers=self._auth)
        except httpx.HTTPError as e:
            raise APIConnectionError(f"Cannot reach the gateway: {e!r}") from e
        return Readiness.model_validate_json(resp.content)

    async def create_session(
        self, title: str | None = None, *, idempotency_key: str | None = None
    ) -> Session:
        return await self._send(_Calls.create_session(title, idempotency_key))

    async def get_session(self, session_id: str) -> Session:
        return await self._send(_Calls.get_session(session_id))

    async def delete_session(self, session_id: str) -> None:
        await self._send(_Calls.delete_session(session_id))

    async def clear_messages(self, session_id: str) -> None:
        """Forget the session's chat history; versions and masks stay."""
        await self._send(_Calls.clear_messages(session_id))

    async def upload_image(
        self,
        session_id: str,
        image: ImageInput,
        *,
        content_type: str | None = None,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
    ) -> Version:
        return await self._send(
            _Calls.upload_image(session_id, image, content_type, if_match, idempotency_key)
        )

    async def get_image(self, session_id: str, version: int | str = "head") -> bytes:
        return await self._send(_Calls.get_image(session_id, version))

    async def undo(
        self,
        session_id: str,
        *,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
    ) -> Version:
        """Move the head to its parent (a retry with the same key does not undo twice)."""
        return await self._send(
            _Calls.move_head(session_id, "undo", None, if_match, idempotency_key)
        )

    async def redo(
        self,
        session_id: str,
        *,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
    ) -> Version:
        return await self._send(
            _Calls.move_head(session_id, "redo", None, if_match, idempotency_key)
        )

    async def checkout(
        self, session_id: str, version: int, *, if_match: int | str | None = None
    ) -> Version:
        body = _build(Checkout, version=version).model_dump()
        return await self._send(_Calls.move_head(session_id, "checkout", body, if_match, None))

    async def chat(
        self, session_id: str, message: str, *, idempotency_key: str | None = None, **params: Any
    ) -> ChatReply:
        req = _build(ChatRequest, message=message, stream=False, **params)
        return await self._send(_Calls.chat(session_id, req, idempotency_key))

    async def chat_stream(
        self, session_id: str, message: str, *, idempotency_key: str | None = None, **params: Any
    ) -> AsyncIterator[ChatDelta | ChatReply]:
        req = _build(ChatRequest, message=message, stream=True, **params)
        async for ev in self._events(_Calls.chat(session_id, req, idempotency_key)):
            if ev.event == "json":
                yield ChatReply.model_validate_json(ev.data)
                continue
            item = _chat_event(ev)
            if item is not None:
                yield item

    async def segment(
        self,
        session_id: str,
        *,
        points: Sequence[Sequence[float]] | None = None,
        labels: Sequence[int] | None = None,
        boxes: Sequence[Sequence[float]] | None = None,
        stroke: str | None = None,
        text: str | None = None,
        dilate: int = 0,
        idempotency_key: str | None = None,
    ) -> MaskInfo:
        req = _segment_request(
            points=points, labels=labels, boxes=boxes, stroke=stroke, text=text, dilate=dilate
        )
        return await self._send(_Calls.segment(session_id, req, idempotency_key))

    async def upload_mask(
        self,
        session_id: str,
        mask: ImageInput,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> MaskInfo:
        return await self._send(_Calls.upload_mask(session_id, mask, version, idempotency_key))

    async def get_mask(self, session_id: str, mask_id: str) -> bytes:
        return await self._send(_Calls.get_mask(session_id, mask_id))

    async def _edit(
        self,
        session_id: str,
        operation: str,
        req: BaseModel,
        if_match: int | str | None,
        idempotency_key: str | None,
        on_progress: ProgressCallback | None,
    ) -> Version:
        call = _Calls.edit(
            session_id, operation, req, if_match, idempotency_key, on_progress is not None
        )
        if on_progress is None:
            return await self._send(call)
        async with aclosing(self._events(call)) as events:
            async for ev in events:
                if ev.event == "json":
                    return Version.model_validate_json(ev.data)
                item = _edit_event(ev)
                if isinstance(item, Version):
                    return item
                if item is not None:
                    on_progress(item)
        raise APIConnectionError("The stream ended without a result.")

    async def remove(
        self,
        session_id: str,
        mask_id: str,
        *,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
        **params: Any,
    ) -> Version:
        req = _build(RemoveRequest, mask_id=mask_id, **params)
        return await self._edit(session_id, "remove", req, if_match, idempotency_key, on_progress)

    async def move(
        self,
        session_id: str,
        mask_id: str,
        dx: int,
        dy: int,
        *,
        phrase: str | None = None,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
        **params: Any,
    ) -> Version:
        req = _build(MoveRequest, mask_id=mask_id, dx=dx, dy=dy, phrase=phrase, **params)
        return await self._edit(session_id, "move", req, if_match, idempotency_key, on_progress)

    async def replace(
        self,
        session_id: str,
        mask_id: str,
        phrase: str,
        *,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
        **params: Any,
    ) -> Version:
        req = _build(ReplaceRequest, mask_id=mask_id, phrase=phrase, **params)
        return await self._edit(session_id, "replace", req, if_match, idempotency_key, on_progress)

    async def inpaint(
        self,
        session_id: str,
        boxes: Sequence[Sequence[float]],
        phrases: Sequence[str],
        *,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
        **params: Any,
    ) -> Version:
        req = _build(
            InpaintRequest, boxes=[list(b) for b in boxes], phrases=list(phrases), **params
        )
        return await self._edit(session_id, "inpaint", req, if_match, idempotency_key, on_progress)

    async def generate(
        self,
        session_id: str,
        prompt: str,
        *,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
        **params: Any,
    ) -> Version:
        req = _build(GenerateRequest, prompt=prompt, **params)
        return await self._edit(session_id, "generate", req, if_match, idempotency_key, on_progress)


__all__ = [
    "APIConnectionError",
    "APIError",
    "AsyncLviClient",
    "AuthenticationError",
    "BadGatewayError",
    "BadRequestError",
    "ConflictError",
    "GatewayTimeoutError",
    "InternalServerError",
    "LviClient",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "SSEDecoder",
    "SSEEvent",
    "ServiceUnavailableError",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "error_from_envelope",
]
