"""Sign-in tokens (gateway/auth_tokens.py) against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from support.procs import ProcessFactory, ServerProcess

from gateway.auth_tokens import TOKEN_PREFIX, TokenStore
from lvi.errors import LviError


@pytest.fixture
def own_redis(procs: ProcessFactory) -> Iterator[ServerProcess]:
    """A redis-server of its own (one test fills it)."""
    srv = procs.redis()
    yield srv
    srv.kill()


@pytest.fixture
async def redis(own_redis: ServerProcess) -> AsyncIterator[Any]:
    r = aioredis.Redis.from_url(own_redis.url)
    yield r
    await r.aclose()


def store(r: Any, default: int = 3600, most: int = 7200) -> TokenStore:
    return TokenStore(r, default_ttl_s=default, max_ttl_s=most)


@pytest.mark.anyio
async def test_issue_resolve_revoke(redis: Any) -> None:
    tokens = store(redis)
    token, ttl = await tokens.issue("alice", "password", username="ann")
    assert token.startswith(TOKEN_PREFIX) and len(token) == len(TOKEN_PREFIX) + 43 and ttl == 3600
    assert await tokens.resolve(token) == "alice"
    grant = await tokens.grant(token)
    assert grant is not None and (grant.method, grant.username) == ("password", "ann")
    other, _ = await tokens.issue("alice", "api_key")
    assert other != token
    assert await tokens.revoke(token) is True
    assert await tokens.resolve(token) is None
    assert await tokens.revoke(token) is False
    assert await tokens.resolve(other) == "alice"  # revoking one leaves the others


@pytest.mark.anyio
async def test_only_the_hash_is_stored_with_the_ttl(redis: Any) -> None:
    token, ttl = await store(redis).issue("alice", "api_key", 120)
    keys = [k async for k in redis.scan_iter("lvi:authtok:*")]
    assert len(keys) == 1 and token.encode() not in keys[0]
    assert token.encode() not in await redis.get(keys[0])
    assert 115 <= await redis.ttl(keys[0]) <= 120 and ttl == 120


@pytest.mark.anyio
async def test_lifetime_is_capped(redis: Any) -> None:
    tokens = store(redis, default=3600, most=7200)
    assert (await tokens.issue("alice", "api_key", 10**9))[1] == 7200
    assert (await tokens.issue("alice", "api_key", None))[1] == 3600


@pytest.mark.anyio
async def test_a_token_expires(redis: Any) -> None:
    tokens = store(redis, default=1, most=1)
    token, ttl = await tokens.issue("alice", "password", username="ann")
    assert ttl == 1 and await tokens.resolve(token) == "alice"
    await asyncio.sleep(1.3)
    assert await tokens.resolve(token) is None


@pytest.mark.anyio
async def test_what_is_not_a_token_never_reaches_redis(redis: Any) -> None:
    tokens = store(redis)
    for junk in ("alice-key", TOKEN_PREFIX + "x" * 400, TOKEN_PREFIX + "unknown"):
        assert await tokens.resolve(junk) is None
    await redis.set(f"lvi:authtok:{'0' * 64}", b"not json")
    assert await tokens.grant("lvit_whatever") is None


@pytest.mark.anyio
async def test_a_full_store_refuses_new_tokens_and_keeps_old_ones(redis: Any) -> None:
    tokens = store(redis)
    token, _ = await tokens.issue("alice", "api_key")
    await redis.config_set("maxmemory-policy", "noeviction")
    await redis.config_set("maxmemory", 1)
    try:
        with pytest.raises(LviError) as e:
            await tokens.issue("bob", "api_key")
        assert (e.value.status, e.value.code) == (507, "store_full")
        assert await tokens.resolve(token) == "alice"  # reads still work
    finally:
        await redis.config_set("maxmemory", 0)


@pytest.mark.anyio
async def test_an_unreachable_store_is_503() -> None:
    r = aioredis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)
    try:
        with pytest.raises(LviError) as e:
            await store(r).resolve(TOKEN_PREFIX + "abc")
        assert e.value.status == 503 and e.value.code == "session_store_unavailable"
    finally:
        await r.aclose()
