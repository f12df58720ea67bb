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
from starlette.exceptions import HTTPException as StarletteHTTPException

from lvi_client.errors import STATUS_TYPES, ErrorDetail, ErrorEnvelope, type_and_code

log = logging.getLogger("lvi.errors")


class LviError(Exception):
    """Base of every error we raise on purpose. Subclasses fix the HTTP status; their type
    and default code come from :data:`~lvi_client.errors.STATUS_TYPES` unless they set them."""

    status: int = 500
    type: str = "internal_error"
    code: str = "internal_error"

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "status" in cls.__dict__ and cls.status in STATUS_TYPES:
            etype, code = STATUS_TYPES[cls.status]
            if "type" not in cls.__dict__:
                cls.type = etype
            if "code" not in cls.__dict__:
                cls.code = code

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

    def response(self) -> JSONResponse:
        """This error as the envelope response, with its status and headers."""
        return JSONResponse(self.envelope(), status_code=self.status, headers=self.headers or None)


class BadRequest(LviError):
    """A request that is well-formed but semantically wrong (400)."""

    status = 400


class Unauthorized(LviError):
    """Missing or wrong credentials (401)."""

    status = 401


class NotFound(LviError):
    """Unknown resource, or a resource owned by someone else (404)."""

    status = 404


class Conflict(LviError):
    """The resource changed under the caller, or a cap is reached (409)."""

    status = 409


class PayloadTooLarge(LviError):
    """A body, image or text over its limit (413)."""

    status = 413


class UnsupportedMediaType(LviError):
    """An image format or content type we do not accept (415)."""

    status = 415


class Unprocessable(LviError):
    """A request that fails schema validation (422)."""

    status = 422


class RateLimited(LviError):
    """Too many requests in flight or queued (429); carries Retry-After."""

    status = 429

    def __init__(self, message: str, *, retry_after: float = 1.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.headers.setdefault("Retry-After", str(max(1, round(retry_after))))


class BadGateway(LviError):
    """An upstream worker answered with something we cannot use (502)."""

    status = 502


class ServiceUnavailable(LviError):
    """Not ready, draining, or a dependency is down (503)."""

    status = 503


class InsufficientStorage(LviError):
    """The store is full, or a storage quota is reached (507)."""

    status = 507


class DeadlineExceeded(LviError):
    """The request's deadline passed before the work finished (504)."""

    status = 504


# Each status's class (the ones above), for errors relayed from another component.
_BY_STATUS: dict[int, type[LviError]] = {
    c.status: c for c in LviError.__subclasses__() if c.__module__ == __name__
}


def error_for_status(
    status: int, message: str, *, code: str | None = None, param: str | None = None
) -> LviError:
    """Our error for an HTTP status (its class where it has one)."""
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls(message, code=code, param=param)
    err = LviError(message, code=code, param=param)
    err.status = status
    err.type, default_code = type_and_code(status)
    err.code = code or default_code
    return err


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
    default_type, default_code = type_and_code(status)
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
        return exc.response()

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_error_response(exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc.__cause__, LviError):
            # FastAPI turns any failure while reading a declared body into a 400 ("error
            # parsing the body"); one of ours (a body over the size limit: 413) keeps its status.
            return exc.__cause__.response()
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


__all__ = [
    "STATUS_TYPES",
    "BadGateway",
    "BadRequest",
    "Conflict",
    "DeadlineExceeded",
    "ErrorDetail",
    "ErrorEnvelope",
    "LviError",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServiceUnavailable",
    "Unauthorized",
    "Unprocessable",
    "UnsupportedMediaType",
    "error_for_status",
    "error_response",
    "install_error_handlers",
    "validation_error_response",
]
