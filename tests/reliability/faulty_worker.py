"""A real inpaint worker with a fault-injection knob, run as its own process by the fault suite.

    python tests/reliability/faulty_worker.py --port P [--delay SECONDS]

It is the production app (``services.inpaint.app.create_app``: same runtime, admission
control, deadlines, error envelope) around the real OpenCV backend, with one wrapper: each
``inpaint`` / ``composite`` first waits ``delay`` seconds, polling ``Job.check()`` every
10 ms the way a model's step loop does, so a request past its deadline is abandoned there.
Two extra counters on the worker's own ``/metrics`` show what happened to the work:
``lvi_fault_abandoned_total`` (stopped at a check) and ``lvi_fault_completed_total``.
``PUT /fault/delay`` ``{"seconds": S}`` changes the delay at run time; ``GET /fault/delay``
reads it back.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


class Delay(BaseModel):
    """Body of ``PUT /fault/delay``."""

    seconds: float = Field(ge=0, le=3600)


class DelayedBackend:
    """Wraps a backend: a cancellable wait before each call, and counters of the outcome."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.name = getattr(inner, "name", "inpaint")
        self.abandoned: Any = None
        self.completed: Any = None

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    def bind_metrics(self, registry: Any) -> None:
        from prometheus_client import Counter

        self.abandoned = Counter(
            "lvi_fault_abandoned_total", "Injected-delay calls stopped by Job.check().", ["op"]
        )
        self.completed = Counter(
            "lvi_fault_completed_total", "Injected-delay calls that ran to the end.", ["op"]
        )
        registry.register(self.abandoned)
        registry.register(self.completed)
        inner_bind = getattr(self.inner, "bind_metrics", None)
        if callable(inner_bind):
            inner_bind(registry)

    def load(self) -> None:
        self.inner.load()

    def warmup(self) -> None:
        self.inner.warmup()

    def info(self) -> dict[str, Any]:
        return {**self.inner.info(), "fault_delay_s": self.delay}

    def _wait(self, op: str, job: Any) -> None:
        from lvi.worker import Cancelled

        end = time.monotonic() + self.delay
        try:
            while time.monotonic() < end:
                job.check()
                time.sleep(0.01)
            job.check()
        except Cancelled:
            if self.abandoned is not None:
                self.abandoned.labels(op).inc()
            raise

    def inpaint(self, req: Any, job: Any) -> Any:
        self._wait("inpaint", job)
        out = self.inner.inpaint(req, job)
        if self.completed is not None:
            self.completed.labels("inpaint").inc()
        return out

    def composite(self, req: Any, job: Any) -> Any:
        self._wait("composite", job)
        out = self.inner.composite(req, job)
        if self.completed is not None:
            self.completed.labels("composite").inc()
        return out


def build_app(delay: float, port: int) -> Any:
    from services.inpaint.app import create_app
    from services.inpaint.backends import build_backend
    from services.inpaint.settings import InpaintSettings

    settings = InpaintSettings(port=port, backend="opencv", model=None)
    backend = DelayedBackend(build_backend(settings), delay)
    app = create_app(settings, backend=backend)

    @app.put("/fault/delay", include_in_schema=False)
    async def set_delay(body: Delay) -> dict[str, float]:
        backend.delay = body.seconds
        return {"seconds": backend.delay}

    @app.get("/fault/delay", include_in_schema=False)
    async def get_delay() -> dict[str, float]:
        return {"seconds": backend.delay}

    return app


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args()

    from launcher.serve import serve
    from lvi.logs import configure_logging

    configure_logging("inpaint", "info", False)
    return serve(build_app(args.delay, args.port), args.host, args.port, "warning")


if __name__ == "__main__":
    sys.exit(main())
