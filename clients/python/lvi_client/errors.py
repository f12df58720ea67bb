"""The error envelope, the one HTTP status <-> error type/code table, and the SDK's exceptions.

Every component of the stack answers an error as ``{"error": {"type", "message", "code",
"param"}}`` with the HTTP status of :data:`STATUS_TYPES`. The server side (``lvi.errors``, the
gateway's worker clients) reads the same table from here, so the SDK and the servers cannot
disagree about what a status or a type means.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    """The body of an error: a stable ``type`` and ``code`` for programs, a ``message`` for people."""

    type: str
    message: str
    code: str
    param: str | None = None


class ErrorEnvelope(BaseModel):
    """The one error shape of every component: ``{"error": {...}}``."""

    error: ErrorDetail


# The one table: HTTP status -> (error type, default code). A type that stands for several
# statuses (invalid_request_error) maps back to the first of them.
STATUS_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "bad_request"),
    401: ("authentication_error", "unauthorized"),
    403: ("permission_error", "forbidden"),
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    406: ("invalid_request_error", "not_acceptable"),
    409: ("conflict_error", "conflict"),
    413: ("payload_too_large", "payload_too_large"),
    415: ("unsupported_media_type", "unsupported_media_type"),
    422: ("invalid_request_error", "validation_error"),
    429: ("rate_limit_error", "rate_limited"),
    500: ("internal_error", "internal_error"),
    502: ("upstream_error", "bad_gateway"),
    503: ("service_unavailable", "unavailable"),
    504: ("timeout_error", "deadline_exceeded"),
    507: ("insufficient_storage", "store_full"),
}


def type_and_code(status: int) -> tuple[str, str]:
    """The error type and default code of ``status`` (unknown statuses: internal_error)."""
    return STATUS_TYPES.get(status, STATUS_TYPES[500])


def status_of_type(error_type: str, default: int = 500) -> int:
    """The HTTP status an error type stands for: what a streamed ``event: error`` (which has
    no status of its own) would have been answered with."""
    for status, (etype, _) in STATUS_TYPES.items():
        if etype == error_type:
            return status
    return default


# -- client exceptions ----------------------------------------------------------------------
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


class InsufficientStorageError(APIError):
    """507: the session store is full (``store_full``) or a storage quota is reached
    (``quota_exceeded``, ``param`` names the quota)."""

    status = 507


# Each status's exception: every APIError subclass above that has a status of its own.
_BY_STATUS: dict[int, type[APIError]] = {c.status: c for c in APIError.__subclasses__() if c.status}


def error_from_envelope(
    status: int | None, body: bytes | str, headers: Mapping[str, str] | None = None
) -> APIError:
    """Build the typed error for an envelope (``status`` None: guess it from the type, as
    for an ``event: error`` in a stream)."""
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    try:
        err = json.loads(body)["error"]
        message = str(err.get("message", ""))
        etype, code = str(err.get("type", "error")), str(err.get("code", "error"))
        param = err.get("param")
    except (ValueError, KeyError, TypeError, AttributeError):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        message, etype, code, param = text[:500] or "Unknown error.", "error", "error", None
    if status is None:
        status = status_of_type(etype)
    cls = _BY_STATUS.get(status) or (InternalServerError if status >= 500 else APIError)
    return cls(
        message,
        status=status,
        type=etype,
        code=code,
        param=param,
        request_id=lower.get("x-request-id"),
        headers=lower,
    )


__all__ = [
    "STATUS_TYPES",
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "BadGatewayError",
    "BadRequestError",
    "ConflictError",
    "ErrorDetail",
    "ErrorEnvelope",
    "GatewayTimeoutError",
    "InsufficientStorageError",
    "InternalServerError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServiceUnavailableError",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "error_from_envelope",
    "status_of_type",
    "type_and_code",
]
