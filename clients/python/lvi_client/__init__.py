"""Python client of the LLaVA-Interactive gateway: :class:`LviClient` (sync) and
:class:`AsyncLviClient` (async), the API's models and its typed errors.

It depends on httpx, pydantic and httpx-sse only, so other applications can call the gateway
without installing the server.
"""

from .client import AsyncLviClient, LviClient
from .errors import (
    STATUS_TYPES,
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    ConflictError,
    ErrorDetail,
    ErrorEnvelope,
    GatewayTimeoutError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
    error_from_envelope,
)
from .models import (
    ChatDelta,
    ChatReply,
    MaskInfo,
    ProgressEvent,
    SegmentResult,
    Session,
    SessionPage,
    SessionSummary,
    Version,
)

__all__ = [
    "STATUS_TYPES",
    "APIConnectionError",
    "APIError",
    "AsyncLviClient",
    "AuthenticationError",
    "BadGatewayError",
    "BadRequestError",
    "ChatDelta",
    "ChatReply",
    "ConflictError",
    "ErrorDetail",
    "ErrorEnvelope",
    "GatewayTimeoutError",
    "InternalServerError",
    "LviClient",
    "MaskInfo",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ProgressEvent",
    "RateLimitError",
    "SegmentResult",
    "ServiceUnavailableError",
    "Session",
    "SessionPage",
    "SessionSummary",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "Version",
    "error_from_envelope",
]
