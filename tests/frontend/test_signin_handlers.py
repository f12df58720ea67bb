"""The sign-in handlers over a fake gateway with users, keys, tokens and session owners."""

from __future__ import annotations

import copy
import secrets
from pathlib import Path

import gradio as gr
import pytest

from frontend.handlers import Controller, ImageFiles, UiState
from frontend.handlers.signin import EXPIRED, SIGNED_OUT
from lvi.contracts.gateway import AuthToken, Session, WhoAmI
from lvi_client import AuthenticationError, NotFoundError
from tests.frontend.fakes import FakeGateway
from tests.frontend.test_handlers import PARK, threaded


class UsersFake(FakeGateway):
    """The fake gateway, plus who is calling: each copy from :meth:`with_api_key` presents
    one credential, and sessions belong to the principal that made them."""

    def __init__(self) -> None:
        super().__init__()
        self.key: str | None = None
        self.headers: dict[str, str] = {}
        self.passwords = {"alice": "pw-alice"}
        self.keys = {"bob-key": "bob"}
        self.tokens: dict[str, str] = {}
        self.owners: dict[str, str] = {}

    def with_api_key(  # type: ignore[override]
        self, api_key: str | None, *, headers: dict[str, str] | None = None
    ) -> UsersFake:
        twin = copy.copy(self)  # shares every table, like the SDK shares its pool
        twin.key, twin.headers = api_key, dict(headers or {})
        return twin

    def _who(self) -> str:
        who = self.tokens.get(self.key or "") or self.keys.get(self.key or "")
        if who is None:
            raise AuthenticationError("Invalid API key.", status=401, code="invalid_api_key")
        return who

    async def login(self, username: str, password: str) -> AuthToken:
        if self.passwords.get(username) != password:
            raise AuthenticationError("Wrong username or password.", status=401)
        return self._token(username, "password")

    async def issue_token(self) -> AuthToken:
        return self._token(self._who(), "api_key")

    def _token(self, principal: str, method: str) -> AuthToken:
        token = "lvit_" + secrets.token_urlsafe(8)
        self.tokens[token] = principal
        return AuthToken(token=token, principal=principal, expires_in=3600, method=method)  # type: ignore[arg-type]

    async def logout(self) -> None:
        self.tokens.pop(self.key or "", None)

    async def whoami(self) -> WhoAmI:
        return WhoAmI(principal=self._who(), method="token")

    async def get_session(self, session_id: str) -> Session:
        # A session is claimed by whoever reads it first: its creator (create_session reads
        # it back at once).
        if session_id in self.sessions:
            self.owners.setdefault(session_id, self._who())
        if self.owners.get(session_id) != self._who():
            raise NotFoundError("Session not found.", status=404)
        return await super().get_session(session_id)


@pytest.fixture
def users() -> UsersFake:
    return UsersFake()


@pytest.fixture
def signin_ctl(users: UsersFake, tmp_path: Path) -> Controller:
    return Controller(users, ImageFiles(tmp_path / "files"), sign_in=True)


@threaded
async def test_nothing_without_sign_in(signin_ctl: Controller) -> None:
    entry = await signin_ctl.enter({"session_id": "whatever", "token": None})
    assert entry.loaded is None and entry.message == SIGNED_OUT
    with pytest.raises(gr.Error, match="Sign in first"):
        await signin_ctl.upload(UiState(), PARK)  # an API caller that never signed in
    with pytest.raises(gr.Error, match="Sign in first"):
        await signin_ctl.refresh(UiState(session_id="whatever"))


@threaded
async def test_password_sign_in_resume_and_sign_out(
    signin_ctl: Controller, users: UsersFake
) -> None:
    with pytest.raises(gr.Error, match="Wrong username or password"):
        await signin_ctl.sign_in_password(None, "alice", "nope")
    with pytest.raises(gr.Error, match="username and password"):
        await signin_ctl.sign_in_password(None, " ", "x")
    entry = await signin_ctl.sign_in_password(None, " alice ", "pw-alice", "10.0.0.7")
    assert entry.loaded is not None and "alice" in entry.user_line
    state, stored = entry.loaded.state, entry.loaded.stored
    assert state.principal == "alice" and state.token in users.tokens
    assert stored == {"session_id": state.session_id, "token": state.token}
    await signin_ctl.upload(state, PARK)

    # A reload: the browser's token resumes the same session for the same user.
    again = await signin_ctl.enter(stored, "10.0.0.7")
    assert again.loaded is not None and again.loaded.state.session_id == state.session_id
    assert again.loaded.head.image is not None

    # Sign-out revokes the token: the stored token no longer resumes anything.
    out = await signin_ctl.sign_out(state)
    assert out.token is None and state.token not in users.tokens
    gone = await signin_ctl.enter(stored)
    assert gone.loaded is None and gone.message == EXPIRED


@threaded
async def test_api_key_sign_in_keeps_only_a_token(signin_ctl: Controller, users: UsersFake) -> None:
    with pytest.raises(gr.Error, match="Paste your API key"):
        await signin_ctl.sign_in_key(None, "  ")
    with pytest.raises(gr.Error, match="Invalid API key"):
        await signin_ctl.sign_in_key(None, "guess")
    entry = await signin_ctl.sign_in_key(None, "bob-key")
    assert entry.loaded is not None and entry.loaded.state.principal == "bob"
    assert entry.loaded.stored["token"] != "bob-key"  # the browser never keeps the key
    assert entry.loaded.stored["token"] in users.tokens


@threaded
async def test_a_stored_session_of_another_user_is_not_opened(
    signin_ctl: Controller, users: UsersFake
) -> None:
    alice = await signin_ctl.sign_in_password(None, "alice", "pw-alice")
    assert alice.loaded is not None
    await signin_ctl.upload(alice.loaded.state, PARK)
    # Bob signs in on the same browser, which still remembers Alice's session id.
    bob = await signin_ctl.sign_in_key({"session_id": alice.loaded.state.session_id}, "bob-key")
    assert bob.loaded is not None
    assert bob.loaded.state.session_id != alice.loaded.state.session_id
    assert bob.loaded.head.image is None  # a fresh session of his own


@threaded
async def test_visitor_address_is_forwarded(signin_ctl: Controller, users: UsersFake) -> None:
    state = UiState(token="t", address="10.1.2.3")
    client = signin_ctl.gateway(state)
    assert isinstance(client, UsersFake) and client.headers == {"X-Forwarded-For": "10.1.2.3"}
    quiet = Controller(users, sign_in=True, forward_address=False)
    bound = quiet.gateway(state)
    assert isinstance(bound, UsersFake) and bound.headers == {}


@threaded
async def test_single_user_mode_says_so(users: UsersFake, tmp_path: Path) -> None:
    users.key = "bob-key"  # the base client carries the configured key
    ctl = Controller(users, ImageFiles(tmp_path / "f"), sign_in=False)
    entry = await ctl.enter(None)
    assert entry.loaded is not None and entry.loaded.state.token is None
    assert "Single-user mode" in entry.user_line and "`bob`" in entry.user_line
