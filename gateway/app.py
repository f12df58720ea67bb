"""The gateway's FastAPI app: ``create_app(settings=None, store=None, clients=None)``.

Nothing is created at import time. The Redis client and the workers' HTTP pools are built
by ``create_app`` (they connect lazily, on first use) unless they are injected, and closed
when the app stops (only those it built).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from lvi.errors import InsufficientStorage, LviError, install_error_handlers
from lvi.worker import RequestContextMiddleware

from .auth import ApiKeyAuth
from .auth_throttle import FailedAuthThrottle
from .clients import WorkerClients
from .metrics import GatewayMetrics
from .planner import Planner, PlannerSettings, make_planner
from .proxies import trust_proxies
from .quotas import Quotas
from .ratelimit import RateLimiter
from .routes import act, auth, health, library, openai, sessions
from .sessions import SessionStore
from .sessions.errors import StoreUnavailable
from .settings import GatewaySettings
from .signin import build_signin
from .workflows import Workflows

log = logging.getLogger("lvi.gateway")

DESCRIPTION = """The public API of LLaVA-Interactive, served: multi-turn sessions of image
versions (upload, generate, segment, remove, move, replace, inpaint, undo/redo) and chat
about the current image. Authenticate with `Authorization: Bearer <key>` (an API key, or a
sign-in token from `POST /v1/auth/login`)."""


def create_app(
    settings: GatewaySettings | None = None,
    store: SessionStore | None = None,
    clients: WorkerClients | None = None,
    planner: Planner | None = None,
) -> FastAPI:
    """Build the gateway. ``store``, ``clients`` and the chat's ``planner`` may be injected
    (tests, benchmarks); unset, the planner is the one ``GATEWAY_PLANNER_*`` names."""
    settings = settings or GatewaySettings()
    planner_http: httpx.AsyncClient | None = None
    if planner is None:
        planner_settings = PlannerSettings()
        if planner_settings.kind == "llm":  # one pool for the app's life, closed with it
            planner_http = httpx.AsyncClient()
        planner = make_planner(planner_settings, http_client=planner_http)
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
                "planner": planner.name,
            },
        )
        try:
            yield
        finally:
            if own_clients:
                await clients.aclose()
            if own_store:
                await store.close()
            if planner_http is not None:
                await planner_http.aclose()

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
    app.state.auth_throttle = FailedAuthThrottle(settings.auth_failures_per_minute, 60.0)
    app.state.quotas = store.quotas = Quotas(store.redis, settings, metrics)

    def count_store_error(code: str) -> None:
        metrics.store_errors.labels(code).inc()

    app.state.ratelimiter = RateLimiter(
        store.redis,
        settings.rate_limit_per_minute,
        settings.rate_limit_burst,
        on_store_error=count_store_error,
    )
    app.state.authenticator, app.state.signin = build_signin(
        settings, store.redis, app.state.auth, app.state.auth_throttle, app.state.ratelimiter
    )
    app.state.clients = clients
    # The services the routes get through gateway.deps (one wiring place: Workflows.build).
    app.state.workflows = Workflows.build(store, clients, settings, metrics, planner)
    install_error_handlers(app)
    _count_store_errors(app, count_store_error)
    app.include_router(health.build_router())
    app.include_router(library.build_router())
    app.include_router(sessions.build_router())
    app.include_router(act.build_router())
    app.include_router(openai.build_router())
    app.include_router(auth.build_router())
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        logger_name="lvi.gateway.access",
    )
    trust_proxies(app, settings.forwarded_allow_ips)  # outermost: throttle and logs see clients
    return app


def _count_store_errors(app: FastAPI, count: Callable[[str], None]) -> None:
    """Count the store's 503/507 answers (``lvi_gateway_store_errors_total{code}``); the
    guard that raised them logged a warning already."""

    async def on_store_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LviError)
        if exc.code != "quota_exceeded":
            count(exc.code)
        return exc.response()

    app.add_exception_handler(StoreUnavailable, on_store_error)
    app.add_exception_handler(InsufficientStorage, on_store_error)


def _redact(url: str) -> str:
    """A Redis URL without its password, for logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}:{parts.port or 6379}"
        return urlunsplit(parts._replace(netloc=netloc))
    return url
