"""Sign-in and sign-out: every visitor's own credentials, the only ones the UI calls the
gateway with.

A visitor signs in with a username and password (``POST /v1/auth/login``) or with their own
API key, which is exchanged at once for a sign-in token (``POST /v1/auth/token``), so the
browser never keeps the key itself. The token lives in this tab's server-side state and in the
browser's localStorage (to survive a reload); the gateway checks it on every call, so a stored
session id never opens another user's session, and sign-out revokes it.

In the explicit single-user mode (``FRONTEND_AUTH=single-user``) there is no sign-in: the base
client's own key acts for everyone who reaches the page, and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from frontend.handlers.errors import fail, user_errors
from frontend.handlers.session import SessionHandlers
from frontend.handlers.state import Loaded, UiState
from lvi_client import APIError, AuthenticationError

SINGLE_USER = (
    "**Single-user mode:** there is no sign-in; anyone who can open this page acts as "
    "`{principal}`. Use it only on your own machine (`FRONTEND_AUTH=signin` makes every "
    "visitor sign in)."
)
SIGNED_OUT = "Sign in with your username and password, or with your own API key."
EXPIRED = "Your sign-in has expired or was revoked: sign in again."


@dataclass
class Entry:
    """A page load or sign-in: the loaded session when signed in, else what the sign-in
    panel says."""

    loaded: Loaded | None
    user_line: str
    message: str = ""


class SignInHandlers(SessionHandlers):
    """Page load (resume a signed-in browser), sign-in by password or API key, sign-out."""

    def user_line(self, state: UiState) -> str:
        """The user bar: who this tab acts as."""
        if not self.sign_in:
            return SINGLE_USER.format(principal=state.principal or "the configured key")
        return f"Signed in as **{state.principal}**" if state.principal else ""

    async def enter(self, stored: dict[str, Any] | None, address: str | None = None) -> Entry:
        """A page load: in single-user mode, the stored session; with sign-in, the stored
        session of the user whose token this browser still holds, or the sign-in panel."""
        if not self.sign_in:
            state = UiState(address=address)
            try:
                state = replace(state, principal=(await self.client.whoami()).principal)
            except APIError:
                pass  # an older gateway, or still starting: the banner says less
            loaded = await self.open(stored, state)
            return Entry(loaded, self.user_line(loaded.state))
        token = (stored or {}).get("token")
        if not token:
            return Entry(None, "", SIGNED_OUT)
        state = UiState(token=str(token), address=address)
        try:
            who = await self.gateway(state).whoami()
        except AuthenticationError:
            return Entry(None, "", EXPIRED)
        state = replace(state, principal=who.principal)
        loaded = await self.open(stored, state)
        return Entry(loaded, self.user_line(loaded.state))

    async def sign_in_password(
        self,
        stored: dict[str, Any] | None,
        username: str | None,
        password: str | None,
        address: str | None = None,
    ) -> Entry:
        """Username and password -> a sign-in token -> this user's session."""
        username = (username or "").strip()
        if not username or not password:
            raise fail("Enter your username and password.", title="Sign in")
        anonymous = self.client.with_api_key(None, headers=self.forwarded(address))
        with user_errors():
            token = await anonymous.login(username, password)
        return await self._signed_in(stored, UiState(token=token.token, address=address))

    async def sign_in_key(
        self, stored: dict[str, Any] | None, api_key: str | None, address: str | None = None
    ) -> Entry:
        """An API key -> a sign-in token (the browser keeps only the token) -> a session."""
        key = (api_key or "").strip()
        if not key:
            raise fail("Paste your API key.", title="Sign in")
        with user_errors():
            token = await self.client.with_api_key(
                key, headers=self.forwarded(address)
            ).issue_token()
        return await self._signed_in(stored, UiState(token=token.token, address=address))

    async def _signed_in(self, stored: dict[str, Any] | None, state: UiState) -> Entry:
        with user_errors():
            who = await self.gateway(state).whoami()
        state = replace(state, principal=who.principal)
        # The browser may remember a session of whoever used it before: ``open`` asks the
        # gateway with this user's token, which finds it only if it is this user's.
        loaded = await self.open(stored, state)
        return Entry(loaded, self.user_line(loaded.state))

    async def sign_out(self, state: UiState) -> UiState:
        """Revoke this tab's token (the gateway refuses it from now on, in every tab)."""
        if state.token:
            try:
                await self.gateway(state).logout()
            except APIError:
                pass  # expired or revoked already: signed out either way
        return UiState(address=state.address)
