"""The /v1/auth routes through the app (real redis-server): password sign-in, tokens used as
credentials, ownership by the user's principal, logout, throttling and proxy trust."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.procs import ServerProcess

from gateway.app import create_app
from gateway.users import hash_password

from .conftest import gateway_settings

ANN = hash_password("ann-password")  # user ann, principal alice (the key alice-key's too)
DAN = hash_password("dan-password")  # user dan, principal dan (no API key)
USERS = f"ann=alice:{ANN},dan:{DAN}"

Make = Callable[..., TestClient]


@pytest.fixture
def make(redis_server: ServerProcess) -> Iterator[Make]:
    """``make(**settings)`` -> an in-process gateway (no workers: these routes need none)."""
    opened: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        overrides.setdefault("users", USERS)
        app = create_app(gateway_settings(redis_server.url, **overrides))
        tc = TestClient(app, base_url="http://gateway", raise_server_exceptions=False)
        tc.__enter__()
        opened.append(tc)
        return tc

    yield build
    for tc in opened:
        tc.__exit__(None, None, None)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def login(gw: TestClient, username: str, password: str, **kw: Any) -> Any:
    return gw.post("/v1/auth/login", json={"username": username, "password": password, **kw})


def token_of(gw: TestClient, username: str, password: str) -> str:
    r = login(gw, username, password)
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def test_login_token_owns_sessions_of_the_users_principal(make: Make) -> None:
    gw = make()
    r = login(gw, "ann", "ann-password")
    assert r.status_code == 200
    body = r.json()
    assert body["principal"] == "alice" and body["method"] == "password"
    assert body["expires_in"] == 12 * 3600 and body["token"].startswith("lvit_")
    ann = bearer(body["token"])
    sid = gw.post("/v1/sessions", json={"title": "ann's"}, headers=ann).json()["id"]
    assert gw.get(f"/v1/sessions/{sid}", headers=ann).status_code == 200
    # The principal's own API key sees it (one principal); another principal does not.
    assert gw.get(f"/v1/sessions/{sid}", headers=bearer("alice-key")).status_code == 200
    assert gw.get(f"/v1/sessions/{sid}", headers=bearer("bob-key")).status_code == 404
    dan = bearer(token_of(gw, "dan", "dan-password"))
    assert gw.get(f"/v1/sessions/{sid}", headers=dan).status_code == 404
    assert sid not in {s["id"] for s in gw.get("/v1/sessions", headers=dan).json()["sessions"]}


def test_whoami(make: Make) -> None:
    gw = make(allow_anonymous=True)
    token = token_of(gw, "dan", "dan-password")
    assert gw.get("/v1/auth/whoami", headers=bearer(token)).json() == {
        "principal": "dan",
        "method": "token",
    }
    assert gw.get("/v1/auth/whoami", headers=bearer("bob-key")).json() == {
        "principal": "bob",
        "method": "api_key",
    }
    assert gw.get("/v1/auth/whoami").json() == {"principal": "anonymous", "method": "anonymous"}


def test_logout_ends_the_token_only(make: Make) -> None:
    gw = make()
    first, second = token_of(gw, "ann", "ann-password"), token_of(gw, "ann", "ann-password")
    r = gw.post("/v1/auth/logout", headers=bearer(first))
    assert r.status_code == 204 and r.content == b""
    r = gw.get("/v1/auth/whoami", headers=bearer(first))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert gw.post("/v1/auth/logout", headers=bearer(first)).status_code == 401
    assert gw.get("/v1/auth/whoami", headers=bearer(second)).status_code == 200
    # An API key cannot be "logged out" (nobody should believe a leaked key ends so).
    r = gw.post("/v1/auth/logout", headers=bearer("alice-key"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "not_a_token"
    assert gw.get("/v1/auth/whoami", headers=bearer("alice-key")).status_code == 200


def test_wrong_password_and_unknown_user_are_one_answer(make: Make) -> None:
    gw = make()
    wrong, unknown = login(gw, "ann", "dan-password"), login(gw, "zed", "ann-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"] == {
        "type": "authentication_error",
        "message": "Invalid username or password.",
        "code": "invalid_credentials",
        "param": None,
    }
    r = gw.post("/v1/auth/login", json={"username": "ann"})  # schema: the envelope, 422
    assert r.status_code == 422 and "error" in r.json()


def test_exchange_an_api_key_for_a_token(make: Make) -> None:
    gw = make(login_ttl_s=600, login_max_ttl_s=900)
    r = gw.post("/v1/auth/token", json={}, headers=bearer("bob-key"))
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("principal", "method", "expires_in")} == {
        "principal": "bob",
        "method": "api_key",
        "expires_in": 600,
    }
    token = r.json()["token"]
    assert gw.get("/v1/auth/whoami", headers=bearer(token)).json()["principal"] == "bob"
    r = gw.post("/v1/auth/token", json={"ttl_s": 10**6}, headers=bearer("bob-key"))
    assert r.json()["expires_in"] == 900  # capped
    assert gw.post("/v1/auth/token", headers=bearer("bob-key")).status_code == 200  # no body
    # A token may not mint another (it would escape its own expiry and revocation).
    r = gw.post("/v1/auth/token", json={}, headers=bearer(token))
    assert r.status_code == 403 and r.json()["error"]["code"] == "api_key_required"
    assert gw.post("/v1/auth/token", json={}).status_code == 401


def test_removing_a_user_ends_their_tokens(make: Make) -> None:
    token = token_of(make(), "dan", "dan-password")
    restarted = make(users=f"ann=alice:{ANN}")  # same Redis, dan is gone
    r = restarted.get("/v1/auth/whoami", headers=bearer(token))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    remapped = make(users=f"dan=bob:{DAN}")  # dan now stands for another principal
    assert remapped.get("/v1/auth/whoami", headers=bearer(token)).status_code == 401


def test_failed_sign_ins_and_tokens_are_throttled_per_address(make: Make) -> None:
    gw = make(auth_failures_per_minute=5)
    codes = [login(gw, "ann", f"guess-{i}").status_code for i in range(3)]
    codes += [
        gw.get("/v1/auth/whoami", headers=bearer(f"lvit_forged{i}")).status_code for i in range(2)
    ]
    codes += [login(gw, "ann", f"guess-{i}").status_code for i in range(1000)]
    assert codes == [401] * 5 + [429] * 1000
    r = login(gw, "ann", "ann-password")  # the right password waits too
    assert r.status_code == 429 and r.json()["error"]["code"] == "auth_throttled"
    assert int(r.headers["Retry-After"]) >= 1


def test_each_signed_in_user_is_its_own_rate_limit_bucket(make: Make) -> None:
    users = f"u1=rl-one:{ANN},u2=rl-two:{DAN}"
    gw = make(users=users, rate_limit_per_minute=60, rate_limit_burst=3)
    one = bearer(token_of(gw, "u1", "ann-password"))  # signing in counts: 1 of 3
    assert [gw.get("/v1/usage", headers=one).status_code for _ in range(3)] == [200, 200, 429]
    two = bearer(token_of(gw, "u2", "dan-password"))
    assert gw.get("/v1/usage", headers=two).status_code == 200


def test_forwarded_for_only_from_an_allowed_proxy(make: Make) -> None:
    """The UI calls for all its visitors from one address: behind it, the throttle must count
    each visitor's own address, which only a trusted proxy may name."""

    def fails_from(gw: TestClient, client: str) -> int:
        r = login_from(gw, "ann", "nope", client)
        return r.status_code

    def login_from(gw: TestClient, user: str, password: str, client: str) -> Any:
        body = {"username": user, "password": password}
        return gw.post("/v1/auth/login", json=body, headers={"X-Forwarded-For": client})

    # The TestClient's peer address is "testclient".
    trusted = make(auth_failures_per_minute=2, forwarded_allow_ips="10.0.0.1,testclient")
    assert [fails_from(trusted, "198.51.100.7") for _ in range(3)] == [401, 401, 429]
    assert login_from(trusted, "ann", "ann-password", "198.51.100.8").status_code == 200

    untrusted = make(auth_failures_per_minute=2)  # default: the header means nothing
    assert fails_from(untrusted, "198.51.100.1") == 401
    assert fails_from(untrusted, "198.51.100.2") == 401
    assert login_from(untrusted, "ann", "ann-password", "198.51.100.3").status_code == 429

    other = make(auth_failures_per_minute=2, forwarded_allow_ips="10.0.0.1")
    assert [fails_from(other, f"198.51.100.{i}") for i in range(3)] == [401, 401, 429]


# -- delegated sign-in (GATEWAY_DELEGATES): the UI behind an authenticating proxy ---------
def test_a_delegate_signs_a_user_in(make: Make) -> None:
    gw = make(delegates="alice")  # alice-key plays the UI's key here
    r = gw.post("/v1/auth/token", json={"principal": "sso.carol"}, headers=bearer("alice-key"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["principal"] == "sso.carol" and body["method"] == "delegated"
    carol = bearer(body["token"])
    assert gw.get("/v1/auth/whoami", headers=carol).json()["principal"] == "sso.carol"
    sid = gw.post("/v1/sessions", json={}, headers=carol).json()["id"]
    # Carol's session is hers: not the delegate's, not anyone else's.
    assert gw.get(f"/v1/sessions/{sid}", headers=carol).status_code == 200
    assert gw.get(f"/v1/sessions/{sid}", headers=bearer("alice-key")).status_code == 404
    assert gw.get(f"/v1/sessions/{sid}", headers=bearer("bob-key")).status_code == 404
    # Asking for oneself is a plain exchange.
    r = gw.post("/v1/auth/token", json={"principal": "alice"}, headers=bearer("alice-key"))
    assert r.status_code == 200 and r.json()["method"] == "api_key"


def test_only_a_delegates_key_may(make: Make) -> None:
    gw = make(delegates="alice")
    r = gw.post("/v1/auth/token", json={"principal": "alice"}, headers=bearer("bob-key"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_a_delegate"
    # A delegate's token may not delegate either (only its key).
    token = gw.post("/v1/auth/token", json={}, headers=bearer("alice-key")).json()["token"]
    r = gw.post("/v1/auth/token", json={"principal": "carol"}, headers=bearer(token))
    assert r.status_code == 403 and r.json()["error"]["code"] == "api_key_required"
    # A malformed principal is refused before anything is issued.
    for bad in ["", "a b", "x" * 129, "a:b"]:
        r = gw.post("/v1/auth/token", json={"principal": bad}, headers=bearer("alice-key"))
        assert r.status_code == 422, (bad, r.text)


def test_no_delegates_by_default_and_tokens_end_with_the_delegate(make: Make) -> None:
    gw = make()
    r = gw.post("/v1/auth/token", json={"principal": "carol"}, headers=bearer("alice-key"))
    assert r.status_code == 403
    first = make(delegates="alice")
    token = first.post(
        "/v1/auth/token", json={"principal": "carol"}, headers=bearer("alice-key")
    ).json()["token"]
    assert first.get("/v1/auth/whoami", headers=bearer(token)).status_code == 200
    # The same Redis, a gateway restarted without the delegate: its users' tokens end.
    restarted = make()
    assert restarted.get("/v1/auth/whoami", headers=bearer(token)).status_code == 401
