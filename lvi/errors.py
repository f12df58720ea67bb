"""Error classes and the one error envelope every component returns.

Every error a client can see has the shape ``{"error": {"type", "message", "code", "param"}}``
and the HTTP status of the class that raised it. Handlers installed by
:func:`install_error_handlers` turn our errors, request-validation errors, Starlette HTTP
errors and unexpected exceptions into that envelope; a stack trace never reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("lvi.errors")


class ErrorDetail(BaseModel):
    """The body of an error: a stable ``type`` and ``code`` for programs, a ``message`` for people."""

    type: str
    message: str
    code: str
    param: str | None = None


class ErrorEnvelope(BaseModel):
    """The one error shape of every component: ``{"error": {...}}``."""

    error: ErrorDetail


class LviError(Exception):
    """Base of every error we raise on purpose. Subclasses fix the HTTP status and type."""

    status: int = 500
    type: str = "internal_error"
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.param = param
        self.headers = dict(headers or {})

    def envelope(self) -> dict[str, Any]:
        """The JSON body for this error."""
        detail = ErrorDetail(type=self.type, message=self.message, code=self.code, param=self.param)
        return {"error": detail.model_dump()}


class BadRequest(LviError):
    """A request that is well-formed but semantically wrong (400)."""

    status, type, code = 400, "invalid_request_error", "bad_request"


class Unauthorized(LviError):
    """Missing or wrong credentials (401)."""

    status, type, code = 401, "authentication_error", "unauthorized"


class NotFound(LviError):
    """Unknown resource, or a resource owned by someone else (404)."""

    status, type, code = 404, "not_found_error", "not_found"


class Conflict(LviError):
    """The resource changed under the caller, or a cap is reached (409)."""

    status, type, code = 409, "conflict_error", "conflict"


class PayloadTooLarge(LviError):
    """A body, image or text over its limit (413)."""

    status, type, code = 413, "payload_too_large", "payload_too_large"


class UnsupportedMediaType(LviError):
    """An image format or content type we do not accept (415)."""

    status, type, code = 415, "unsupported_media_type", "unsupported_media_type"


class Unprocessable(LviError):
    """A request that fails schema validation (422)."""

    status, type, code = 422, "invalid_request_error", "validation_error"


class RateLimited(LviError):
    """Too many requests in flight or queued (429); carries Retry-After."""

    status, type, code = 429, "rate_limit_error", "rate_limited"

    def __init__(self, message: str, *, retry_after: float = 1.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.headers.setdefault("Retry-After", str(max(1, round(retry_after))))


class BadGateway(LviError):
    """An upstream worker answered with something we cannot use (502)."""

    status, type, code = 502, "upstream_error", "bad_gateway"


class ServiceUnavailable(LviError):
    """Not ready, draining, or a dependency is down (503)."""

    status, type, code = 503, "service_unavailable", "unavailable"


class DeadlineExceeded(LviError):
    """The request's deadline passed before the work finished (504)."""

    status, type, code = 504, "timeout_error", "deadline_exceeded"


_STATUS_TYPES: dict[int, tuple[str, str]] = {
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
    503: ("service_unavailable", "unavailable"),
    504: ("timeout_error", "deadline_exceeded"),
}


def error_response(
    status: int,
    message: str,
    *,
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Build an envelope response for any status."""
    default_type, default_code = _STATUS_TYPES.get(status, ("internal_error", "internal_error"))
    detail = ErrorDetail(
        type=type or default_type, message=message, code=code or default_code, param=param
    )
    return JSONResponse({"error": detail.model_dump()}, status_code=status, headers=headers)


def _loc_to_param(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    """422 envelope for a schema error: the first problem in the message, its location in ``param``."""
    errors = exc.errors()
    if not errors:
        return error_response(422, "Invalid request.")
    first = errors[0]
    param = _loc_to_param(first.get("loc", ()))
    msg = str(first.get("msg", "Invalid value."))
    # A ValueError raised by one of our validators may wrap one of our errors (e.g. an image
    # over the byte limit); surface its status instead of a generic 422.
    ctx_err = (first.get("ctx") or {}).get("error")
    if isinstance(ctx_err, LviError):
        return error_response(
            ctx_err.status, ctx_err.message, type=ctx_err.type, code=ctx_err.code, param=param
        )
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    message = f"{param}: {msg}{more}" if param else f"{msg}{more}"
    return error_response(422, message, param=param)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` leave as the envelope."""

    async def on_lvi_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LviError)
        return error_response(
            exc.status,
            exc.message,
            type=exc.type,
            code=exc.code,
            param=exc.param,
            headers=exc.headers or None,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_error_response(exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error."
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, message, headers=headers)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Logged with the trace for operators; the client gets a plain message.
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "Internal server error.")

    app.add_exception_handler(LviError, on_lvi_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
