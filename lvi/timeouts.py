"""Slow clients: how long a server waits for a request, and how many it serves at once.

uvicorn bounds the idle time between requests on a kept-alive connection
(``timeout_keep_alive``), the size of an incomplete header block
(``h11_max_incomplete_event_size``) and the connections served at once (``limit_concurrency``:
503 beyond it), but not the time a client takes to send its body: an app reading a body that
never arrives waits forever. :class:`BodyDeadlineMiddleware` bounds that with a deadline and
answers 408 with the error envelope. Nothing in uvicorn bounds the time to receive the header
block itself (slowloris): a reverse proxy in front must (docs/DEPLOY.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lvi.errors import error_response

log = logging.getLogger("lvi.timeouts")


class ServerLimits(BaseSettings):
    """Limits of every server we run (``LVI_*``, read by each process from its own env)."""

    model_config = SettingsConfigDict(env_prefix="LVI_", extra="ignore")

    body_timeout_s: float = Field(
        default=60.0, gt=0, description="Deadline for receiving a whole request body."
    )
    keep_alive_s: float = Field(
        default=30.0, gt=0, description="Idle time before a kept-alive connection is closed."
    )
    max_connections: int | None = Field(
        default=256,
        ge=1,
        description="Connections and tasks served at once by one process (503 beyond).",
    )
    max_header_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest incomplete header block (then 431/400)."
    )

    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve /metrics on this port too (so a network policy can open only it).",
    )
    metrics_on_main_port: bool = Field(
        default=True, description="Keep /metrics on the main port as well."
    )

    def uvicorn_kwargs(self) -> dict[str, Any]:
        return {
            # Longer than clients' idle-connection expiry (httpx: 5 s), so a client never reuses
            # a connection the server is closing at that very moment (ReadError under load).
            "timeout_keep_alive": self.keep_alive_s,
            "h11_max_incomplete_event_size": self.max_header_bytes,
            "limit_concurrency": self.max_connections,
        }


class BodyDeadlineMiddleware:
    """Answer 408 (envelope, ``request_body_timeout``) when a request body is not received
    within ``timeout_s`` of the request's start.

    The deadline covers only the body: once the last chunk arrived, ``receive`` passes through
    untouched (streaming responses wait on it for the client's disconnect). On timeout the app
    is cancelled (not failed: no 500, no traceback), and the 408 is sent unless the app had
    started a response; it is logged as a warning.
    """

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    def __getattr__(self, name: str) -> Any:  # ``app.state`` etc. of the wrapped app
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        task = asyncio.current_task()
        assert task is not None
        body_done = False
        timed_out = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                task.cancel()  # unwinds the app (and anyio task groups inside it) cleanly
                await asyncio.Event().wait()  # the cancellation lands here
                raise  # pragma: no cover - unreachable
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except asyncio.CancelledError:
            if not timed_out:
                raise
            task.uncancel()
        if not timed_out:
            return
        log.warning(
            "request body not received within %.0fs: answered 408",
            self.timeout_s,
            extra={"path": scope.get("path"), "client": (scope.get("client") or ("?",))[0]},
        )
        if started:
            return
        response = error_response(
            408,
            f"The request body was not received within {self.timeout_s:g} s.",
            type="invalid_request_error",
            code="request_body_timeout",
            headers={"Connection": "close"},
        )
        with contextlib.suppress(OSError, RuntimeError):
            await response(scope, receive, send)
