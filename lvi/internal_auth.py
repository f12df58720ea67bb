"""The shared internal token between the gateway and the workers (defence in depth).

When ``LVI_INTERNAL_TOKEN`` is set, a worker refuses every route but its health and metrics
routes unless the request carries ``X-LVI-Internal-Token`` with that value (401, envelope,
``invalid_internal_token``). The gateway sends it on every worker call. A network policy
already keeps other pods away from the workers; the token also stops anything that gets past
it (a misconfigured policy, a port-forward, a compromised neighbour on a laptop).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from lvi.errors import error_response

log = logging.getLogger("lvi.internal_auth")

HEADER = "X-LVI-Internal-Token"
ENV = "LVI_INTERNAL_TOKEN"
OPEN_PREFIXES = ("/v2/health", "/healthz", "/readyz", "/metrics")


def internal_token(env: Mapping[str, str] | None = None) -> str | None:
    """The configured token, or None (no check)."""
    value = (os.environ if env is None else env).get(ENV, "").strip()
    return value or None


def internal_headers(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers a caller of a worker adds (empty without a token)."""
    token = internal_token(env)
    return {HEADER: token} if token else {}


class InternalTokenMiddleware:
    """Refuse requests without the internal token (health and metrics routes stay open)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._digest = hashlib.sha256(token.encode()).digest()
        self._header = HEADER.lower().encode()

    def __getattr__(self, name: str) -> Any:  # ``app.state`` etc. of the wrapped app
        return getattr(self.app, name)

    def _allowed(self, scope: Scope) -> bool:
        if str(scope.get("path", "")).startswith(OPEN_PREFIXES):
            return True
        for key, value in scope.get("headers", []):
            if key == self._header:
                return hmac.compare_digest(hashlib.sha256(value).digest(), self._digest)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        log.warning(
            "refused a call without the internal token",
            extra={"path": scope.get("path"), "client": (scope.get("client") or ("?",))[0]},
        )
        response = error_response(
            401,
            f"This worker answers only the gateway: send {HEADER}.",
            code="invalid_internal_token",
        )
        await response(scope, receive, send)
