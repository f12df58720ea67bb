"""Sign-in against a real ``lvi gateway`` process (uvicorn) and redis-server, through the SDK:
login, the token as the client's credentials, whoami, logout; and the client address behind a
proxy (uvicorn's own X-Forwarded-For handling, which trusts 127.0.0.1, is off)."""

from __future__ import annotations

import httpx
import pytest
from support.fuzz import schemathesis_run
from support.procs import ProcessFactory, ServerProcess

from gateway.users import hash_password
from lvi_client import AuthenticationError, LviClient, RateLimitError

DEAD_URL = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def redis(procs: ProcessFactory) -> ServerProcess:
    return procs.redis()


def start_gateway(procs: ProcessFactory, redis: ServerProcess, **env: str) -> ServerProcess:
    full = {
        "GATEWAY_REDIS_URL": redis.url,
        "GATEWAY_API_KEYS": "alice:alice-key",
        "GATEWAY_USERS": f"ann=alice:{hash_password('ann-password')}",
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        "GATEWAY_AUTH_FAILURES_PER_MINUTE": "3",
        **{f"GATEWAY_{w}_URL": DEAD_URL for w in ("LLAVA", "SEEM", "GLIGEN", "INPAINT")},
        **env,
    }
    return procs.lvi("gateway", env=full, ready_path="/healthz")


def test_sign_in_with_the_sdk(procs: ProcessFactory, redis: ServerProcess) -> None:
    gw = start_gateway(procs, redis)
    with LviClient(gw.url, timeout=30) as anonymous:
        signed = anonymous.login("ann", "ann-password", ttl_s=600)
        assert signed.principal == "alice" and signed.method == "password"
        assert signed.expires_in == 600
        ann = anonymous.with_api_key(signed.token)
        me = ann.whoami()
        assert (me.principal, me.method) == ("alice", "token")
        session = ann.create_session("signed in")
        with LviClient(gw.url, "alice-key", timeout=30) as key:  # same principal
            assert key.get_session(session.id).title == "signed in"
            exchanged = key.issue_token()
            assert exchanged.method == "api_key" and exchanged.principal == "alice"
            assert key.with_api_key(exchanged.token).whoami().method == "token"
        ann.logout()
        with pytest.raises(AuthenticationError) as e:
            ann.whoami()
        assert e.value.code == "invalid_token"
        with pytest.raises(AuthenticationError) as e:
            anonymous.login("ann", "wrong")
        assert e.value.code == "invalid_credentials"
        with pytest.raises(AuthenticationError) as e:  # the parent kept no credentials
            anonymous.whoami()
        assert e.value.code == "missing_api_key"


def _login_from(client: httpx.Client, forwarded_for: str, password: str = "nope") -> int:
    r = client.post(
        "/v1/auth/login",
        json={"username": "ann", "password": password},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return r.status_code


def test_forwarded_for_is_trusted_only_when_configured(
    procs: ProcessFactory, redis: ServerProcess
) -> None:
    plain = start_gateway(procs, redis)  # we connect from 127.0.0.1: uvicorn would trust it
    with httpx.Client(base_url=plain.url, timeout=30) as c:
        codes = [_login_from(c, f"203.0.113.{i}") for i in range(4)]
        assert codes == [401, 401, 401, 429]  # one address: ours, whatever the header says

    behind = start_gateway(procs, redis, GATEWAY_FORWARDED_ALLOW_IPS="127.0.0.1")
    with httpx.Client(base_url=behind.url, timeout=30) as c:
        assert [_login_from(c, f"203.0.113.{i}") for i in range(4)] == [401] * 4
        assert [_login_from(c, "198.51.100.9") for _ in range(4)] == [401, 401, 401, 429]
        assert _login_from(c, "198.51.100.10", "ann-password") == 200
    with LviClient(behind.url, timeout=30) as sdk:  # the same through the SDK, no header
        for _ in range(3):
            with pytest.raises(AuthenticationError):
                sdk.login("ann", "nope")
        with pytest.raises(RateLimitError):
            sdk.login("ann", "ann-password")


def test_fuzz_the_sign_in_routes(procs: ProcessFactory, redis: ServerProcess) -> None:
    """Whatever the input: no 5xx, every answer in the schema (the shared fuzz leaves login
    out so its failures do not throttle the other tests' address)."""
    gw = start_gateway(procs, redis, GATEWAY_AUTH_FAILURES_PER_MINUTE="0")
    result = schemathesis_run(
        gw.url,
        max_examples=25,
        headers={"Authorization": "Bearer alice-key"},
        include_path_regex="^/v1/auth/",
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "generated" in result.stdout
    assert "Tested: 4" in result.stdout  # login, token, logout, whoami
