"""API keys: ``Authorization: Bearer <key>`` -> principal, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import logging

from lvi.errors import Unauthorized

from .auth_tokens import TOKEN_PREFIX

log = logging.getLogger("lvi.gateway.auth")

ANONYMOUS = "anonymous"


class ApiKeyAuth:
    """Maps API keys to principals.

    Keys are compared as SHA-256 digests with :func:`hmac.compare_digest`, and every
    configured key is compared on every request, so the time taken says nothing about which
    key (or how much of one) matched. A principal may have several keys (rotation).
    """

    def __init__(self, pairs: list[tuple[str, str]], allow_anonymous: bool = False) -> None:
        self._keys = [(p, hashlib.sha256(k.encode()).digest()) for p, k in pairs]
        self.allow_anonymous = allow_anonymous
        if not self._keys and not allow_anonymous:
            log.warning("no API keys configured (GATEWAY_API_KEYS): every request will get 401")

    @classmethod
    def from_string(cls, spec: str, allow_anonymous: bool = False) -> ApiKeyAuth:
        """Parse ``principal:key,principal:key``."""
        pairs: list[tuple[str, str]] = []
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            principal, sep, key = item.partition(":")
            if not sep or not principal.strip() or not key.strip():
                raise ValueError("GATEWAY_API_KEYS must be comma-separated principal:key pairs")
            if key.strip().startswith(TOKEN_PREFIX):  # it would be taken for a sign-in token
                raise ValueError(f"GATEWAY_API_KEYS: a key may not start with {TOKEN_PREFIX!r}")
            pairs.append((principal.strip(), key.strip()))
        return cls(pairs, allow_anonymous)

    def has_principal(self, principal: str) -> bool:
        """Does some configured key still belong to ``principal``? (A token exchanged for a
        key ends when its principal's last key is removed.)"""
        return any(p == principal for p, _ in self._keys)

    def authenticate(self, authorization: str | None) -> str:
        """The principal for an ``Authorization`` header value, or 401."""
        if not authorization:
            if self.allow_anonymous:
                return ANONYMOUS
            raise Unauthorized(
                "Missing API key: send 'Authorization: Bearer <key>'.",
                code="missing_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                "Malformed Authorization header: use 'Bearer <key>'.",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        digest = hashlib.sha256(token.encode()).digest()
        found: str | None = None
        for principal, key in self._keys:
            if hmac.compare_digest(digest, key) and found is None:
                found = principal
        if found is None:
            raise Unauthorized(
                "Invalid API key.", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
            )
        return found
