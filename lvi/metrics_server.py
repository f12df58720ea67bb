"""Prometheus metrics on a port of their own (``LVI_METRICS_PORT``).

Each app keeps its metrics in its own registry (``app.state.metrics.registry`` in the gateway,
``app.state.runtime.metrics.registry`` in a worker); :func:`start_metrics_server` serves that
registry with prometheus_client's small threaded server, so a monitoring network policy can
open only that port. :class:`HideMetrics` removes ``/metrics`` from the main port when
``LVI_METRICS_ON_MAIN_PORT=false``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from starlette.types import ASGIApp, Receive, Scope, Send

from lvi.errors import error_response


def app_registry(app: Any) -> CollectorRegistry | None:
    """The registry of a gateway or worker app (None for an app without one, e.g. the UI)."""
    state = getattr(app, "state", None)
    for holder in (
        getattr(state, "metrics", None),
        getattr(getattr(state, "runtime", None), "metrics", None),
    ):
        registry = getattr(holder, "registry", None)
        if isinstance(registry, CollectorRegistry):
            return registry
    return None


def start_metrics_server(registry: CollectorRegistry, host: str, port: int) -> Callable[[], None]:
    """Serve ``registry`` on ``host:port`` in a thread; returns the function that stops it."""
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop


class HideMetrics:
    """404 (envelope) for ``/metrics`` on the main port; every other path passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == "/metrics":
            response = error_response(404, "Metrics are served on the metrics port.")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
