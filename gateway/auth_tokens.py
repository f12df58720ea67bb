"""Sign-in tokens in Redis: short-lived, revocable bearer credentials.

A token is ``lvit_`` + 43 random URL-safe characters (256 bits); the prefix tells the gateway
(and a secret scanner) that it is a sign-in token, not an API key. Only its SHA-256 is stored,
under ``lvi:authtok:<hex>`` with the token's lifetime as the key's TTL, so a copy of Redis does
not hold usable credentials and an expired token simply is not there. The value says who the
token is for and how they signed in (``password`` with the username, or ``api_key``).

Redis failures answer like the session store's: 503 when Redis is unreachable, 507
``store_full`` when it refuses the write of a new token (a full store must not let anyone in
without a record, and reads, hence already issued tokens, keep working).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from .sessions.errors import redis_guard

TOKEN_PREFIX = "lvit_"
# token_urlsafe(32) is 43 characters; anything much longer is not ours (and not worth hashing).
_MAX_TOKEN_CHARS = 256


@dataclass(frozen=True)
class TokenGrant:
    """What a token stands for: the principal, how its holder signed in (``password`` or
    ``api_key``) and, for a password, the username (so removing the user ends the token)."""

    principal: str
    method: str
    username: str = ""


def is_token(credential: str) -> bool:
    """Does ``credential`` look like a sign-in token (rather than an API key)?"""
    return credential.startswith(TOKEN_PREFIX)


class TokenStore:
    """Issues, resolves and revokes sign-in tokens, over the gateway's Redis client."""

    def __init__(
        self, redis: Any, *, default_ttl_s: int, max_ttl_s: int, prefix: str = "lvi"
    ) -> None:
        self.redis = redis
        self.default_ttl_s = default_ttl_s
        self.max_ttl_s = max(max_ttl_s, 1)
        self.prefix = prefix

    def _key(self, token: str) -> str:
        return f"{self.prefix}:authtok:{hashlib.sha256(token.encode()).hexdigest()}"

    def ttl_for(self, requested: int | None) -> int:
        """The lifetime a token gets: the caller's wish, else the default; capped by the max."""
        return min(requested or self.default_ttl_s, self.max_ttl_s)

    async def issue(
        self, principal: str, method: str, ttl_s: int | None = None, *, username: str = ""
    ) -> tuple[str, int]:
        """A new token for ``principal`` -> ``(token, expires_in seconds)``."""
        ttl = self.ttl_for(ttl_s)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        value = json.dumps({"principal": principal, "method": method, "username": username})
        with redis_guard():
            await self.redis.set(self._key(token), value.encode(), ex=ttl)
        return token, ttl

    async def grant(self, token: str) -> TokenGrant | None:
        """What ``token`` stands for, or None when it is unknown, expired or revoked."""
        if not is_token(token) or len(token) > _MAX_TOKEN_CHARS:
            return None
        with redis_guard():
            raw = await self.redis.get(self._key(token))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return TokenGrant(str(data["principal"]), str(data["method"]), str(data["username"]))
        except (ValueError, KeyError, TypeError):  # not written by us: not a credential
            return None

    async def resolve(self, token: str) -> str | None:
        """The principal of ``token``, or None when it is unknown, expired or revoked."""
        found = await self.grant(token)
        return found.principal if found else None

    async def revoke(self, token: str) -> bool:
        """End ``token`` now; True when it was live."""
        if not is_token(token) or len(token) > _MAX_TOKEN_CHARS:
            return False
        with redis_guard():
            removed = await self.redis.delete(self._key(token))
        return bool(removed)
