"""``serve()``: how every ``lvi`` server runs its ASGI app under uvicorn."""

from __future__ import annotations

from typing import Any


def serve(app: Any, host: str, port: int, log_level: str) -> int:
    """Run ``app`` under uvicorn; return 1 if the app asked to stop because its model failed."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        log_config=None,  # our JSON logging is configured already
        access_log=False,  # our middleware logs each request with its id and latency
        # Longer than clients' idle-connection expiry (httpx: 5 s), so a client never reuses a
        # connection the server is closing at that very moment (seen as ReadError under load).
        timeout_keep_alive=30,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    exit_code = {"code": 0}
    runtime = getattr(app.state, "runtime", None)
    if runtime is not None:

        def on_fatal(exc: BaseException) -> None:
            # Fail fast: a worker whose model cannot load should exit so that its supervisor
            # (lvi up, Docker, Kubernetes) shows the error instead of a forever-unready pod.
            exit_code["code"] = 1
            server.should_exit = True

        runtime.on_fatal = on_fatal
    server.run()
    return exit_code["code"]
