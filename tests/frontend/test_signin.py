"""Every visitor signs in: the UI in its default ``signin`` mode against a real gateway with a
password user (``GATEWAY_USERS``) and API-key principals, in Chromium and over Gradio's own
HTTP API (what an attacker would call)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.sync_api import expect
from support.procs import ProcessFactory, ServerProcess

from lvi_client import AuthenticationError, LviClient
from tests.frontend.conftest import ROOT, WORKERS, UiStack
from tests.frontend.test_browser import SLOW, Ui

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow
PARK = ROOT / "frontend" / "examples" / "park.png"
ALICE_PASSWORD = "correct horse battery staple"
BOB_KEY = "bob-key-0123456789"


def hash_password(password: str) -> str:
    """The hash an operator pastes into GATEWAY_USERS, made by the documented command."""
    out = subprocess.run(
        [sys.executable, "-m", "launcher", "users", "hash-password", "--stdin"],
        input=password,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return out.stdout.strip().splitlines()[-1]


@dataclass
class SignInStack:
    gateway: ServerProcess
    frontend: ServerProcess


@pytest.fixture(scope="module")
def signin_stack(ui_stack: UiStack, procs: ProcessFactory) -> SignInStack:
    """A second gateway (same Redis and workers) with a password user, and a frontend in the
    default sign-in mode: no key in its environment."""
    env = {
        "GATEWAY_REDIS_URL": ui_stack.redis.url,
        "GATEWAY_API_KEYS": f"bob:{BOB_KEY}",
        "GATEWAY_USERS": f"alice:{hash_password(ALICE_PASSWORD)}",
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        "GATEWAY_FORWARDED_ALLOW_IPS": "127.0.0.1",
    }
    for name in WORKERS:
        if name in ui_stack.workers:
            env[f"GATEWAY_{name.upper()}_URL"] = ui_stack.workers[name].url
    gateway = procs.lvi("gateway", env=env, ready_path="/healthz")
    frontend = procs.lvi(
        "frontend",
        env={"FRONTEND_GATEWAY_URL": gateway.url, "FRONTEND_AUTH": "signin"},
        ready_path="/",
        timeout=120,
    )
    return SignInStack(gateway, frontend)


@pytest.fixture
def second_page(chromium: Browser) -> Iterator[Page]:
    """Another visitor: a browser context of its own (its own localStorage)."""
    context = chromium.new_context(viewport={"width": 1500, "height": 1100})
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def _sign_in_password(page: Page, username: str, password: str) -> None:
    page.locator("#signin-username input, #signin-username textarea").first.fill(username)
    page.locator("#signin-password input, #signin-password textarea").first.fill(password)
    page.locator("#signin-btn").click()


def _upload(page: Page, path: Path) -> None:
    page.locator("#upload-btn").locator("xpath=..").locator("input[type=file]").set_input_files(
        str(path)
    )


def test_visitors_sign_in_and_see_only_their_own(
    page: Page, second_page: Page, signin_stack: SignInStack, artifacts: Path
) -> None:
    ui = Ui(page, artifacts)
    url = signin_stack.frontend.url
    page.goto(url)
    # Nothing but the sign-in panel before sign-in.
    expect(page.locator("#signin")).to_be_visible(timeout=SLOW)
    expect(page.locator("#app")).to_be_hidden()
    ui.shot("signin")

    # A wrong password: the gateway's message, still signed out.
    _sign_in_password(page, "alice", "wrong password")
    expect(ui.error_toast().first).to_be_visible(timeout=SLOW)
    expect(page.locator("#app")).to_be_hidden()

    # Alice signs in and works; a reload keeps her signed in, in the same session.
    _sign_in_password(page, "alice", ALICE_PASSWORD)
    ui.wait_text("#user-bar", "Signed in as alice")
    expect(page.locator("#signin")).to_be_hidden()
    _upload(page, PARK)
    ui.summary("v1 of 1 · upload")
    page.reload()
    ui.wait_text("#user-bar", "Signed in as alice")
    ui.summary("v1 of 1 · upload")
    ui.shot("alice")

    # Bob, in his own browser, signs in with his API key: his own, empty session.
    bob = Ui(second_page, artifacts)
    second_page.goto(url)
    expect(second_page.locator("#signin")).to_be_visible(timeout=SLOW)
    second_page.get_by_role("tab", name="API key").click()
    second_page.locator("#signin-key input, #signin-key textarea").first.fill(BOB_KEY)
    second_page.locator("#signin-key-btn").click()
    bob.wait_text("#user-bar", "Signed in as bob")
    bob.summary("No image yet")

    # Alice signs out in one tab: the page goes back to sign-in, and her token is revoked,
    # so her other tab (same browser) can no longer act.
    other_tab = page.context.new_page()
    other_tab.goto(url)
    Ui(other_tab, artifacts).wait_text("#user-bar", "Signed in as alice")
    page.locator("#signout-btn").click()
    expect(page.locator("#signin")).to_be_visible(timeout=SLOW)
    expect(page.locator("#app")).to_be_hidden()
    _upload(other_tab, PARK)
    expect(Ui(other_tab, artifacts).error_toast().first).to_be_visible(timeout=SLOW)
    ui.shot("signed-out")


def _gradio_call(base: str, api: str, data: list[Any]) -> str:
    """Gradio's HTTP API as any unauthenticated caller uses it: the raw result stream."""
    with httpx.Client(base_url=base, timeout=120) as http:
        posted = http.post(f"/gradio_api/call/{api}", json={"data": data})
        posted.raise_for_status()
        event_id = posted.json()["event_id"]
        return http.get(f"/gradio_api/call/{api}/{event_id}").text


def test_gradio_api_cannot_load_another_users_session(signin_stack: SignInStack) -> None:
    with LviClient(signin_stack.gateway.url) as anon:
        token = anon.login("alice", ALICE_PASSWORD)
    with LviClient(signin_stack.gateway.url, api_key=token.token) as alice:
        session = alice.create_session(title="alice's secret")
        version = alice.upload_image(session.id, PARK)
    url = signin_stack.frontend.url

    # Alice's session id, no credentials: the sign-in panel, none of her data.
    body = _gradio_call(url, "load_session", [{"session_id": session.id, "token": None}])
    assert "event: complete" in body
    assert version.image_hash not in body and "alice's secret" not in body
    # A forged token: the same.
    body = _gradio_call(url, "load_session", [{"session_id": session.id, "token": "lvit_forged"}])
    assert "event: complete" in body and version.image_hash not in body
    # Bob's own credentials with Alice's session id: Bob's own new session, not hers.
    with LviClient(signin_stack.gateway.url, api_key=BOB_KEY) as bob_key:
        bob_token = bob_key.issue_token().token
    body = _gradio_call(url, "load_session", [{"session_id": session.id, "token": bob_token}])
    assert "event: complete" in body and version.image_hash not in body
    assert "Signed in as **bob**" in body
    # An API caller that never signed in can do nothing.
    body = _gradio_call(url, "refresh", [])
    assert "event: error" in body and "Sign in first" in json.dumps(body)

    # Alice's token still works after all that; after her sign-out through the API it does not.
    with LviClient(signin_stack.gateway.url, api_key=token.token) as alice:
        assert alice.whoami().principal == "alice"
        alice.logout()
        with pytest.raises(AuthenticationError):
            alice.whoami()
