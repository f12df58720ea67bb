"""The gateway's FastAPI app: ``create_app(settings=None, store=None, clients=None)``.

Nothing is created at import time. The Redis client and the workers' HTTP pools are built
by ``create_app`` (they connect lazily, on first use) unless they are injected, and closed
when the app stops (only those it built).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lvi.errors import install_error_handlers
from lvi.worker import RequestContextMiddleware

from .auth import ApiKeyAuth
from .clients import WorkerClients
from .metrics import GatewayMetrics
from .ratelimit import RateLimiter
from .routes import health, library, openai, sessions
from .sessions import SessionStore
from .settings import GatewaySettings
from .workflows import Workflows

log = logging.getLogger("lvi.gateway")

DESCRIPTION = """The public API of LLaVA-Interactive, served: multi-turn sessions of image
versions (upload, generate, segment, remove, move, replace, inpaint, undo/redo) and chat
about the current image. Authenticate with `Authorization: Bearer <key>`."""


def create_app(
    settings: GatewaySettings | None = None,
    store: SessionStore | None = None,
    clients: WorkerClients | None = None,
) -> FastAPI:
    """Build the gateway. ``store`` and ``clients`` may be injected (tests, benchmarks)."""
    settings = settings or GatewaySettings()
    metrics = GatewayMetrics()
    own_store, own_clients = store is None, clients is None
    store = store or SessionStore.from_settings(settings)
    clients = clients or WorkerClients.from_settings(settings, metrics)
    for w in clients.workers.values():
        w.metrics = w.metrics or metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info(
            "gateway starting",
            extra={
                "redis": _redact(settings.redis_url),
                "workers": {n: w.base_url for n, w in clients.workers.items()},
            },
        )
        try:
            yield
        finally:
            if own_clients:
                await clients.aclose()
            if own_store:
                await store.close()

    app = FastAPI(
        title="LLaVA-Interactive gateway",
        description=DESCRIPTION,
        version=health.VERSION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.store = store
    app.state.auth = ApiKeyAuth.from_string(settings.api_keys, settings.allow_anonymous)
    app.state.ratelimiter = RateLimiter(
        store.redis, settings.rate_limit_per_minute, settings.rate_limit_burst
    )
    app.state.clients = clients
    # The services the routes get through gateway.deps (one wiring place: Workflows.build).
    app.state.workflows = Workflows.build(store, clients, settings, metrics)
    install_error_handlers(app)
    app.include_router(health.build_router())
    app.include_router(library.build_router())
    app.include_router(sessions.build_router())
    app.include_router(openai.build_router())
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        logger_name="lvi.gateway.access",
    )
    return app


def _redact(url: str) -> str:
    """A Redis URL without its password, for logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}:{parts.port or 6379}"
        return urlunsplit(parts._replace(netloc=netloc))
    return url
