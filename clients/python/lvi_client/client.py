"""Client SDK of the gateway's public API, sync (:class:`LviClient`) and async
(:class:`AsyncLviClient`).

    from lvi_client import LviClient

    with LviClient("http://127.0.0.1:8000", api_key="...") as lvi:
        s = lvi.create_session()
        v1 = lvi.upload_image(s.id, Path("cat.jpg"))
        mask = lvi.segment(s.id, points=[[120, 80]])
        v2 = lvi.remove(s.id, mask.mask_id, if_match=v1.id)
        png = lvi.get_image(s.id, "head")
        for event in lvi.chat_stream(s.id, "What changed?"):
            ...

Every error the gateway sends (the ``{"error": {...}}`` envelope) is raised as a typed
:class:`~lvi_client.errors.APIError` subclass chosen by status (``NotFoundError``,
``ConflictError``, ``RateLimitError`` with ``retry_after``, ``ServiceUnavailableError``...).
Network failures raise :class:`~lvi_client.errors.APIConnectionError`. Every state-changing
POST carries an ``Idempotency-Key`` (generated unless given), so a caller may safely repeat a
call that failed in transit.

The API itself (names, parameters, docstrings, request building, answer parsing) is defined
once, in :mod:`lvi_client._calls`; this module only runs those calls over a sync or an async
httpx client. The public methods are those builders bound to a transport.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Generator,
    Iterator,
)
from contextlib import aclosing, closing
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar

import httpx
from httpx_sse import EventSource

from . import _calls as api
from ._calls import STREAM_ENDED, Call, client_headers, connection_error_message, is_event_stream
from .errors import APIConnectionError

T = TypeVar("T")
P = ParamSpec("P")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)
TR = TypeVar("TR", httpx.BaseTransport, httpx.AsyncBaseTransport)


class _Transport(Generic[H, TR]):
    """What both transports hold: the httpx client and the caller's headers."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 600.0,
        connect_retries: int = 2,
        transport: TR | None = None,
        http_client: H | None = None,
    ) -> None:
        """``transport`` may be any httpx transport (tests: a MockTransport);
        ``http_client`` replaces the built-in client (e.g. Starlette's TestClient)."""
        self._http: H = http_client or self._connect(
            base_url.rstrip("/"), httpx.Timeout(timeout, connect=10.0), transport, connect_retries
        )
        self._auth = client_headers(api_key)
        self._owns_http = True

    def with_api_key(self, api_key: str | None, *, headers: dict[str, str] | None = None) -> Self:
        """The same client presenting other credentials (an API key or a sign-in token),
        sharing this one's connection pool: what a server acting for many users holds, one
        per user. ``headers`` go with every call too (a proxy's ``X-Forwarded-For``).
        Closing the copy does nothing; close the client it came from."""
        twin = copy.copy(self)
        twin._auth = {**client_headers(api_key), **(headers or {})}
        twin._owns_http = False
        return twin

    def _connect(
        self, base_url: str, timeout: httpx.Timeout, transport: TR | None, retries: int
    ) -> H:
        raise NotImplementedError


class _SyncTransport(_Transport[httpx.Client, httpx.BaseTransport]):
    """Runs :class:`~lvi_client._calls.Call` objects over an ``httpx.Client``."""

    def _connect(
        self,
        base_url: str,
        timeout: httpx.Timeout,
        transport: httpx.BaseTransport | None,
        retries: int,
    ) -> httpx.Client:
        transport = transport or httpx.HTTPTransport(retries=retries)
        return httpx.Client(base_url=base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _send(self, call: Call[T]) -> T:
        if call.event is not None:  # streamed: the first item is the result
            with closing(self._iter(call)) as items:
                for item in items:
                    return item
            raise APIConnectionError(STREAM_ENDED)
        try:
            resp = self._http.request(**call.request(self._auth))
        except httpx.HTTPError as e:
            raise APIConnectionError(connection_error_message(e, False)) from e
        return call.answer(resp)

    def _iter(self, call: Call[T]) -> Generator[T, None, None]:
        try:
            with self._http.stream(**call.request(self._auth)) as resp:
                if not is_event_stream(resp):  # an error, or a replayed request's JSON
                    resp.read()
                    yield call.answer(resp)
                    return
                for sse in EventSource(resp).iter_sse():
                    if (item := call.item(sse)) is not None:
                        yield item
        except httpx.HTTPError as e:
            raise APIConnectionError(connection_error_message(e, True)) from e


class _AsyncTransport(_Transport[httpx.AsyncClient, httpx.AsyncBaseTransport]):
    """Runs :class:`~lvi_client._calls.Call` objects over an ``httpx.AsyncClient``."""

    def _connect(
        self,
        base_url: str,
        timeout: httpx.Timeout,
        transport: httpx.AsyncBaseTransport | None,
        retries: int,
    ) -> httpx.AsyncClient:
        transport = transport or httpx.AsyncHTTPTransport(retries=retries)
        return httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _send(self, call: Call[T]) -> T:
        if call.event is not None:
            async with aclosing(self._iter(call)) as items:
                async for item in items:
                    return item
            raise APIConnectionError(STREAM_ENDED)
        try:
            resp = await self._http.request(**call.request(self._auth))
        except httpx.HTTPError as e:
            raise APIConnectionError(connection_error_message(e, False)) from e
        return call.answer(resp)

    async def _iter(self, call: Call[T]) -> AsyncGenerator[T, None]:
        try:
            async with self._http.stream(**call.request(self._auth)) as resp:
                if not is_event_stream(resp):
                    await resp.aread()
                    yield call.answer(resp)
                    return
                async for sse in EventSource(resp).aiter_sse():
                    if (item := call.item(sse)) is not None:
                        yield item
        except httpx.HTTPError as e:
            raise APIConnectionError(connection_error_message(e, True)) from e


# -- binding the API to the transports ------------------------------------------------------
def _sync(build: Callable[P, Call[T]]) -> Callable[Concatenate[_SyncTransport, P], T]:
    @functools.wraps(build)
    def method(self: _SyncTransport, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._send(build(*args, **kwargs))

    return method


def _sync_stream(
    build: Callable[P, Call[T]],
) -> Callable[Concatenate[_SyncTransport, P], Iterator[T]]:
    @functools.wraps(build)
    def method(self: _SyncTransport, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return self._iter(build(*args, **kwargs))

    return method


def _async(
    build: Callable[P, Call[T]],
) -> Callable[Concatenate[_AsyncTransport, P], Coroutine[Any, Any, T]]:
    @functools.wraps(build)
    async def method(self: _AsyncTransport, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._send(build(*args, **kwargs))

    return method


def _async_stream(
    build: Callable[P, Call[T]],
) -> Callable[Concatenate[_AsyncTransport, P], AsyncIterator[T]]:
    @functools.wraps(build)
    def method(self: _AsyncTransport, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        # Built when called (a bad argument raises here, as in the sync client), run when
        # iterated.
        return self._iter(build(*args, **kwargs))

    return method


class LviClient(_SyncTransport):
    """Synchronous client of the gateway. Every method is documented in
    :mod:`lvi_client._calls`, under the same name."""

    def __enter__(self) -> LviClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    login = _sync(api.login)
    issue_token = _sync(api.issue_token)
    logout = _sync(api.logout)
    whoami = _sync(api.whoami)
    info = _sync(api.info)
    usage = _sync(api.usage)
    ready = _sync(api.ready)
    create_session = _sync(api.create_session)
    get_session = _sync(api.get_session)
    list_sessions = _sync(api.list_sessions)
    rename_session = _sync(api.rename_session)
    export_session = _sync(api.export_session)
    delete_session = _sync(api.delete_session)
    clear_messages = _sync(api.clear_messages)
    upload_image = _sync(api.upload_image)
    get_image = _sync(api.get_image)
    undo = _sync(api.undo)
    redo = _sync(api.redo)
    checkout = _sync(api.checkout)
    chat = _sync(api.chat)
    chat_stream = _sync_stream(api.chat_stream)
    plan = _sync(api.plan)
    segment = _sync(api.segment)
    upload_mask = _sync(api.upload_mask)
    get_mask = _sync(api.get_mask)
    remove = _sync(api.remove)
    remove_preview = _sync(api.remove_preview)
    move = _sync(api.move)
    replace = _sync(api.replace)
    inpaint = _sync(api.inpaint)
    generate = _sync(api.generate)


class AsyncLviClient(_AsyncTransport):
    """Asynchronous client with the same methods as :class:`LviClient`."""

    async def __aenter__(self) -> AsyncLviClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    login = _async(api.login)
    issue_token = _async(api.issue_token)
    logout = _async(api.logout)
    whoami = _async(api.whoami)
    info = _async(api.info)
    usage = _async(api.usage)
    ready = _async(api.ready)
    create_session = _async(api.create_session)
    get_session = _async(api.get_session)
    list_sessions = _async(api.list_sessions)
    rename_session = _async(api.rename_session)
    export_session = _async(api.export_session)
    delete_session = _async(api.delete_session)
    clear_messages = _async(api.clear_messages)
    upload_image = _async(api.upload_image)
    get_image = _async(api.get_image)
    undo = _async(api.undo)
    redo = _async(api.redo)
    checkout = _async(api.checkout)
    chat = _async(api.chat)
    chat_stream = _async_stream(api.chat_stream)
    plan = _async(api.plan)
    segment = _async(api.segment)
    upload_mask = _async(api.upload_mask)
    get_mask = _async(api.get_mask)
    remove = _async(api.remove)
    remove_preview = _async(api.remove_preview)
    move = _async(api.move)
    replace = _async(api.replace)
    inpaint = _async(api.inpaint)
    generate = _async(api.generate)


__all__ = ["AsyncLviClient", "LviClient"]
