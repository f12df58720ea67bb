"""``serve()``: how every ``lvi`` server runs its ASGI app under uvicorn.

Every server gets the limits of :class:`lvi.timeouts.ServerLimits` (keep-alive, header size,
connections at once, a deadline for the request body); a worker also the internal token check
(:mod:`lvi.internal_auth`); any app with a metrics registry may serve it on a port of its own
(:mod:`lvi.metrics_server`).
"""

from __future__ import annotations

from typing import Any


def serve(
    app: Any,
    host: str,
    port: int,
    log_level: str,
    *,
    worker: bool = False,
    proxy_headers: bool = True,
) -> int:
    """Run ``app`` under uvicorn; return 1 if the app asked to stop because its model failed.

    ``proxy_headers=False`` turns off uvicorn's own X-Forwarded-For handling, which by default
    trusts 127.0.0.1 (or $FORWARDED_ALLOW_IPS): the gateway trusts only the proxies its
    ``GATEWAY_FORWARDED_ALLOW_IPS`` names (its app does that), since the client address decides
    the failed-auth throttle."""
    import uvicorn

    from lvi.internal_auth import InternalTokenMiddleware, internal_token
    from lvi.metrics_server import HideMetrics, app_registry, start_metrics_server
    from lvi.timeouts import BodyDeadlineMiddleware, ServerLimits

    limits = ServerLimits()
    runtime = getattr(getattr(app, "state", None), "runtime", None)
    registry = app_registry(app)
    asgi: Any = app
    token = internal_token()
    if worker and token:
        asgi = InternalTokenMiddleware(asgi, token)
    if limits.metrics_port and not limits.metrics_on_main_port:
        asgi = HideMetrics(asgi)
    asgi = BodyDeadlineMiddleware(asgi, limits.body_timeout_s)
    config = uvicorn.Config(
        asgi,
        host=host,
        port=port,
        log_level=log_level.lower(),
        log_config=None,  # our JSON logging is configured already
        access_log=False,  # our middleware logs each request with its id and latency
        timeout_graceful_shutdown=30,
        proxy_headers=proxy_headers,
        **limits.uvicorn_kwargs(),
    )
    server = uvicorn.Server(config)
    exit_code = {"code": 0}
    if runtime is not None:

        def on_fatal(exc: BaseException) -> None:
            # Fail fast: a worker whose model cannot load should exit so that its supervisor
            # (lvi up, Docker, Kubernetes) shows the error instead of a forever-unready pod.
            exit_code["code"] = 1
            server.should_exit = True

        runtime.on_fatal = on_fatal
    stop_metrics = None
    if limits.metrics_port and registry is not None:
        stop_metrics = start_metrics_server(registry, host, limits.metrics_port)
    try:
        server.run()
    finally:
        if stop_metrics is not None:
            stop_metrics()
    return exit_code["code"]
