"""Structured (JSON) logging with the request id in every line.

The request id lives in a context variable set by the request middleware; contexts are
copied into inference threads, so lines logged by a backend carry it too.
"""

from __future__ import annotations

import contextvars
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _ContextFilter(logging.Filter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.component = self.component
        return True


def configure_logging(component: str, level: str = "info", json_logs: bool = True) -> None:
    """Send every log line of this process to stderr, as JSON unless ``json_logs`` is false."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(component))
    if json_logs:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(component)s %(request_id)s %(message)s",
                rename_fields={"levelname": "level", "asctime": "time"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(component)s [%(request_id)s] %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # Our middleware logs each request with its id and latency; uvicorn's access log would
    # duplicate it without the id.
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    # httpx logs every request at INFO (readiness probes included); our middleware already
    # logs each request with its id, so only its warnings are worth a line.
    logging.getLogger("httpx").setLevel("WARNING")
