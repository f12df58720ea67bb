"""Who is calling, and signing in: API keys, sign-in tokens, username/password.

:class:`Authenticator` turns an ``Authorization`` header into an :class:`Identity`: a bearer
starting with ``lvit_`` is a sign-in token (looked up in Redis, :mod:`gateway.auth_tokens`),
anything else an API key (:class:`gateway.auth.ApiKeyAuth`). :class:`SignIn` is the logic of the
``/v1/auth`` routes: log in with a password, exchange an API key for a token, log out, who am I.

Failed sign-ins count against the client address exactly as wrong API keys do
(:mod:`gateway.auth_throttle`), so guessing passwords is as slow as guessing keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from lvi.contracts.gateway import AuthToken, LoginRequest, TokenRequest, WhoAmI
from lvi.errors import BadRequest, LviError, Unauthorized

from .auth import ANONYMOUS, ApiKeyAuth
from .auth_throttle import FailedAuthThrottle
from .auth_tokens import TokenGrant, TokenStore, is_token
from .ratelimit import RateLimiter
from .settings import GatewaySettings
from .users import PasswordUsers

Method = Literal["api_key", "token", "anonymous"]
_BEARER = {"WWW-Authenticate": "Bearer"}


class Forbidden(LviError):
    """Valid credentials that may not do this (403)."""

    status = 403


@dataclass(frozen=True)
class Identity:
    """The authenticated caller: its principal, how it authenticated, and the token it
    presented (sign-in tokens only: what logout revokes)."""

    principal: str
    method: Method
    token: str = ""


class Authenticator:
    """API keys and sign-in tokens -> :class:`Identity` (401 when neither is valid).

    A token lives only while what it was issued for still exists in the configuration: the
    user (same principal) for a password sign-in, a key of the principal for an exchanged key.
    So removing a user or a principal's keys (and restarting) ends their tokens at once.
    """

    def __init__(
        self,
        keys: ApiKeyAuth,
        tokens: TokenStore,
        users: PasswordUsers,
        delegates: frozenset[str] = frozenset(),
    ) -> None:
        self.keys = keys
        self.tokens = tokens
        self.users = users
        self.delegates = delegates

    async def identify(self, authorization: str | None) -> Identity:
        scheme, _, credential = (authorization or "").partition(" ")
        credential = credential.strip()
        if scheme.lower() == "bearer" and is_token(credential):
            grant = await self.tokens.grant(credential)
            if grant is None or not self._still_valid(grant):
                raise Unauthorized(
                    "Invalid or expired sign-in token; sign in again.",
                    code="invalid_token",
                    headers=_BEARER,
                )
            return Identity(grant.principal, "token", credential)
        principal = self.keys.authenticate(authorization)
        if not authorization and principal == ANONYMOUS:
            return Identity(principal, "anonymous")
        return Identity(principal, "api_key")

    def _still_valid(self, grant: TokenGrant) -> bool:
        if grant.method == "password":
            return self.users.principal_of(grant.username) == grant.principal
        if grant.method == "delegated":  # its delegate (kept as the username) still is one
            return grant.username in self.delegates and self.keys.has_principal(grant.username)
        return self.keys.has_principal(grant.principal)


class SignIn:
    """The ``/v1/auth`` workflows."""

    INVALID = "Invalid username or password."  # one message: it never says which was wrong

    def __init__(
        self,
        users: PasswordUsers,
        tokens: TokenStore,
        throttle: FailedAuthThrottle | None = None,
        ratelimiter: RateLimiter | None = None,
        delegates: frozenset[str] = frozenset(),
    ) -> None:
        self.users = users
        self.tokens = tokens
        self.throttle = throttle
        self.ratelimiter = ratelimiter
        self.delegates = delegates

    async def login(self, req: LoginRequest, address: str) -> AuthToken:
        """A token for the user whose password this is; 401 ``invalid_credentials`` (counted
        against ``address``) otherwise, 429 ``auth_throttled`` once the address used up its
        failures (checked before any password work)."""
        if self.throttle is not None:
            self.throttle.check(address)
        principal = await self.users.verify(req.username, req.password)
        if principal is None:
            if self.throttle is not None:
                self.throttle.failed(address)
            raise Unauthorized(self.INVALID, code="invalid_credentials")
        if self.ratelimiter is not None:  # signing in is a request of that principal's
            await self.ratelimiter.check(principal)
        token, ttl = await self.tokens.issue(
            principal, "password", req.ttl_s, username=req.username
        )
        return AuthToken(token=token, principal=principal, expires_in=ttl, method="password")

    async def exchange(self, who: Identity, req: TokenRequest) -> AuthToken:
        """A token for the API key this request presents. A token may not mint another (it
        would outlive its own expiry and escape its revocation), nor may anonymous: 403."""
        if who.method != "api_key":
            raise Forbidden(
                "Only an API key can be exchanged for a sign-in token.",
                code="api_key_required",
            )
        if req.principal is not None and req.principal != who.principal:
            return await self._delegate(who, req.principal, req.ttl_s)
        token, ttl = await self.tokens.issue(who.principal, "api_key", req.ttl_s)
        return AuthToken(token=token, principal=who.principal, expires_in=ttl, method="api_key")

    async def _delegate(self, who: Identity, principal: str, ttl_s: int | None) -> AuthToken:
        """A token for ``principal``, asked for by a delegate (the UI behind an authenticating
        proxy, which vouches for its user); 403 ``not_a_delegate`` for anyone else."""
        if who.principal not in self.delegates:
            raise Forbidden(
                "This key may not sign in as another principal (GATEWAY_DELEGATES).",
                code="not_a_delegate",
            )
        if self.ratelimiter is not None:  # signing in is a request of that principal's
            await self.ratelimiter.check(principal)
        token, ttl = await self.tokens.issue(principal, "delegated", ttl_s, username=who.principal)
        return AuthToken(token=token, principal=principal, expires_in=ttl, method="delegated")

    async def logout(self, who: Identity) -> None:
        """Revoke the token this request presents. An API key (or no key) cannot be signed
        out: 400, so nobody believes a leaked key was revoked by this."""
        if who.method != "token":
            raise BadRequest(
                "Only a sign-in token can be logged out; an API key is revoked by removing it "
                "from the gateway's GATEWAY_API_KEYS.",
                code="not_a_token",
            )
        await self.tokens.revoke(who.token)

    @staticmethod
    def whoami(who: Identity) -> WhoAmI:
        return WhoAmI(principal=who.principal, method=who.method)


def build_signin(
    settings: GatewaySettings,
    redis: Any,
    keys: ApiKeyAuth,
    throttle: FailedAuthThrottle | None,
    ratelimiter: RateLimiter | None,
) -> tuple[Authenticator, SignIn]:
    """The app's authenticator and sign-in service (ValueError at startup for a malformed
    ``GATEWAY_USERS`` / ``GATEWAY_USERS_FILE`` entry)."""
    users = PasswordUsers.from_settings(settings.users, settings.users_file or None)
    tokens = TokenStore(
        redis, default_ttl_s=settings.login_ttl_s, max_ttl_s=settings.login_max_ttl_s
    )
    delegates = frozenset(p.strip() for p in settings.delegates.split(",") if p.strip())
    return (
        Authenticator(keys, tokens, users, delegates),
        SignIn(users, tokens, throttle, ratelimiter, delegates),
    )
