"""``with_api_key``: a copy of a client with other credentials, sharing its connection pool
(what the UI holds per visitor); closing the copy leaves the parent open."""

from __future__ import annotations

import httpx
import pytest

from lvi_client import AsyncLviClient, LviClient

WHO = {"principal": "p", "method": "token"}


def recorder() -> tuple[httpx.MockTransport, list[str | None]]:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json=WHO)

    return httpx.MockTransport(handler), seen


def test_sync_copy_shares_the_pool_and_closing_it_keeps_the_parent() -> None:
    transport, seen = recorder()
    parent = LviClient("http://gw", "parent-key", transport=transport)
    with parent.with_api_key("lvit_visitor") as visitor:
        visitor.whoami()
        anonymous = visitor.with_api_key(None)
        anonymous.whoami()
    parent.whoami()  # leaving the copy's `with` did not close the shared pool
    assert seen == ["Bearer lvit_visitor", None, "Bearer parent-key"]
    other = parent.with_api_key("lvit_other")
    parent.close()  # the parent owns the pool: its copies end with it
    with pytest.raises(RuntimeError, match="closed"):
        other.whoami()


@pytest.mark.anyio
async def test_async_copy_shares_the_pool_and_closing_it_keeps_the_parent() -> None:
    transport, seen = recorder()
    parent = AsyncLviClient("http://gw", "parent-key", transport=transport)
    visitor = parent.with_api_key("lvit_visitor")
    assert isinstance(visitor, AsyncLviClient)
    await visitor.whoami()
    await visitor.aclose()
    await parent.whoami()
    assert seen == ["Bearer lvit_visitor", "Bearer parent-key"]
    await parent.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await visitor.whoami()
