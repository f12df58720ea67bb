"""The worker runtime: one way to serve any model behind a typed REST contract.

A worker is a :class:`Backend` (load, warm up, infer) plus a router with its contract's
routes. :func:`create_worker_app` adds everything a model server needs around them:

- lifespan: the backend loads in the background after the socket is open, so
  ``/v2/health/live`` answers at once while ``/v2/health/ready`` says 503 until the model is
  loaded *and* one warm-up inference passed, and 503 again while draining;
- admission control (:mod:`lvi.admission`): N inferences in flight, a bounded wait queue, 429
  with Retry-After beyond it; work enters through ``WorkerRuntime.slot(deadline)``;
- deadlines (``X-Request-Timeout``): work past its deadline answers 504 and is told to stop;
- inference off the event loop, in a dedicated thread pool, with a :class:`Job` handle that
  the backend polls for cancellation and uses to report progress;
- ``X-Request-ID`` in and out and in every log line, a Prometheus registry per app, JSON logs,
  and the one error envelope.

(About 550 lines: the runtime, its request middleware and the app factory are read together
when one of them changes; admission control lives in :mod:`lvi.admission`.)
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lvi.admission import Admission as Admission
from lvi.admission import Deadline as Deadline
from lvi.admission import Slot as Slot
from lvi.errors import (
    BadRequest,
    DeadlineExceeded,
    LviError,
    PayloadTooLarge,
    ServiceUnavailable,
    error_response,
    install_error_handlers,
)
from lvi.gpu import apply_memory_fraction
from lvi.logs import request_id_var
from lvi.settings import WorkerSettings

log = logging.getLogger("lvi.worker")
T = TypeVar("T")
B = TypeVar("B")
S = TypeVar("S", bound=WorkerSettings)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


DISCONNECT_POLL_S = 0.25


class ClientDisconnected(LviError):
    """The client hung up before the answer; nobody reads this response (nginx's 499)."""

    status, type, code = 499, "client_closed_request", "client_disconnected"


class Cancelled(Exception):
    """Raised inside a backend (by :meth:`Job.check`) when its request was abandoned."""


@runtime_checkable
class Backend(Protocol):
    """What a worker's model backend provides. ``load`` and ``warmup`` run in a thread."""

    name: str

    def load(self) -> None: ...

    def warmup(self) -> None: ...

    def info(self) -> dict[str, Any]: ...


class Job:
    """Handle given to a backend call: cancellation flag, deadline and progress sink."""

    def __init__(self, deadline: float | None = None) -> None:
        self.cancel_event = threading.Event()
        self.deadline = deadline
        self._emit: Callable[[Any], None] | None = None

    @property
    def cancelled(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.cancel_event.set()
        return self.cancel_event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the client left or the deadline passed."""
        if self.cancelled:
            raise Cancelled()

    def emit(self, event: Any) -> None:
        """Send an event (e.g. progress) to a streaming client; a no-op when not streaming."""
        if self._emit is not None:
            self._emit(event)


def build_backend(backends: Mapping[str, Callable[[S], B]], settings: S, *, default: str) -> B:
    """The backend a worker's settings name (``<WORKER>_BACKEND``, else the profile's, else
    ``default``), built from the worker's ``{name: class}`` registry.

    An unknown name fails at startup with a message that lists the choices.
    """
    name = (settings.backend or default).lower()
    try:
        factory = backends[name]
    except KeyError:
        var = f"{settings.worker.upper()}_BACKEND" if settings.worker else "backend"
        choices = ", ".join(repr(n) for n in backends)
        raise ValueError(f"{var} must be one of {choices}, not {name!r}") from None
    return factory(settings)


class WorkerMetrics:
    """Prometheus metrics of one worker app, in its own registry (apps never share globals)."""

    def __init__(self, worker: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_seconds = Histogram(
            "lvi_http_request_seconds",
            "HTTP request latency by route.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "lvi_inference_seconds", "Time inside the backend.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.inflight = Gauge("lvi_inflight", "Inferences running now.", registry=r)
        self.queue_depth = Gauge("lvi_queue_depth", "Requests waiting for a slot.", registry=r)
        self.rejected = Counter(
            "lvi_rejected_total", "Requests refused by admission control.", ["reason"], registry=r
        )
        self.model_load_seconds = Gauge(
            "lvi_model_load_seconds", "Seconds spent loading the model.", registry=r
        )
        self.ready = Gauge("lvi_ready", "1 when the worker is ready.", registry=r)
        self.worker_info = Gauge("lvi_worker_info", "Worker identity.", ["worker"], registry=r)
        self.worker_info.labels(worker=worker).set(1)


_DONE = object()


@dataclass
class WorkerRuntime:
    """Holds the backend, its readiness state, admission control and the inference pool."""

    worker: str
    settings: WorkerSettings
    backend: Any
    metrics: WorkerMetrics
    state: str = "starting"  # starting | loading | warming | ready | failed | draining
    error: str | None = None
    on_fatal: Callable[[BaseException], None] | None = None
    admission: Admission = field(init=False)
    executor: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.admission = Admission(
            self.settings.max_concurrency, self.settings.max_queue, self.metrics
        )
        # Loading and warm-up use one extra thread so they never wait for inference threads.
        self.executor = ThreadPoolExecutor(
            max_workers=self.settings.max_concurrency + 1, thread_name_prefix=f"{self.worker}-infer"
        )

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    async def load(self) -> None:
        """Load and warm up in the pool; on failure record it and call ``on_fatal``."""
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        try:
            self.state = "loading"
            # Before any CUDA allocation of the backend (one card, several workers: lvi/gpu.py).
            await loop.run_in_executor(
                self.executor,
                apply_memory_fraction,
                self.settings.gpu_memory_fraction,
                self.settings.device,
            )
            await loop.run_in_executor(self.executor, self.backend.load)
            self.metrics.model_load_seconds.set(time.perf_counter() - t0)
            if self.settings.warmup:
                self.state = "warming"
                await loop.run_in_executor(self.executor, self.backend.warmup)
            self.state = "ready"
            self.metrics.ready.set(1)
            log.info(
                "worker ready",
                extra={"worker": self.worker, "load_seconds": round(time.perf_counter() - t0, 3)},
            )
        except Exception as e:
            self.state = "failed"
            self.error = f"{type(e).__name__}: {e}"
            log.error("model load failed: %s", self.error)
            if self.on_fatal is not None:
                self.on_fatal(e)

    def require_ready(self) -> None:
        if self.state == "draining":
            raise ServiceUnavailable("The worker is shutting down.", code="draining")
        if self.state != "ready":
            msg = f"The {self.worker} worker is not ready (state: {self.state})."
            if self.error:
                msg += f" {self.error}"
            raise ServiceUnavailable(msg, code="not_ready", headers={"Retry-After": "5"})

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        deadline: Deadline,
        disconnected: Callable[[], Awaitable[bool]] | None = None,
    ) -> T:
        """Run ``fn(*args, job)`` in the pool under admission control and the deadline.

        With ``disconnected`` (e.g. ``request.is_disconnected``) the wait is polled, so a
        client that hangs up on a plain (non-streaming) request cancels its job too, instead
        of holding the accelerator until the deadline.
        """
        job = Job(deadline.at)
        slot = await self.slot(deadline).acquire()
        future = self._submit(fn, args, job, slot)
        try:
            if disconnected is None:
                return await asyncio.wait_for(
                    asyncio.shield(future), timeout=max(0.0, deadline.remaining())
                )
            while True:
                remaining = deadline.remaining()
                if remaining <= 0:
                    raise TimeoutError
                try:
                    return await asyncio.wait_for(
                        asyncio.shield(future), timeout=min(remaining, DISCONNECT_POLL_S)
                    )
                except TimeoutError:
                    if deadline.remaining() <= 0:
                        raise
                    if await disconnected():
                        job.cancel_event.set()
                        raise ClientDisconnected("The client closed the connection.") from None
        except TimeoutError:
            job.cancel_event.set()
            raise DeadlineExceeded(
                f"The request's deadline passed after {self.worker} started; the work was abandoned."
            ) from None
        except Cancelled:
            raise DeadlineExceeded("The work was cancelled at its deadline.") from None
        except asyncio.CancelledError:
            job.cancel_event.set()  # the client went away
            raise

    async def stream(
        self, fn: Callable[..., T], *args: Any, deadline: Deadline
    ) -> AsyncGenerator[Any, None]:
        """Like :meth:`run`, but yield each event the backend emits, then ``("result", value)``.

        Closing the iterator (a client disconnect) sets the job's cancel flag, so the backend
        stops at its next :meth:`Job.check`.
        """
        job = Job(deadline.at)
        slot = await self.slot(deadline).acquire()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def emit(ev: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, ev)

        job._emit = emit
        future = self._submit(fn, args, job, slot)
        future.add_done_callback(lambda _f: queue.put_nowait(_DONE))
        try:
            while True:
                try:
                    item = await asyncio.wait_for(
                        queue.get(), timeout=max(0.0, deadline.remaining())
                    )
                except TimeoutError:
                    job.cancel_event.set()
                    raise DeadlineExceeded(
                        "The request's deadline passed during streaming."
                    ) from None
                if item is _DONE:
                    break
                yield item
            try:
                result = future.result()
            except Cancelled:
                raise DeadlineExceeded("The work was cancelled at its deadline.") from None
            yield ("result", result)
        finally:
            if not future.done():
                job.cancel_event.set()

    def slot(self, deadline: Deadline) -> Slot:
        """An admission slot for one piece of work under ``deadline`` (see :class:`Slot`)."""
        return Slot(self.admission, self.metrics, deadline, self.require_ready)

    def _submit(
        self, fn: Callable[..., T], args: tuple[Any, ...], job: Job, slot: Slot
    ) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        try:
            future: asyncio.Future[T] = loop.run_in_executor(
                self.executor, functools.partial(ctx.run, fn, *args, job)
            )
        except BaseException:
            slot.release()  # e.g. the pool is shut down: nothing will ever run
            raise

        def _release(f: asyncio.Future[T]) -> None:
            if not f.cancelled():
                f.exception()  # mark it retrieved: abandoned work must not log "never retrieved"
            slot.release()

        # Released when the thread ends, not when the client stops waiting.
        future.add_done_callback(_release)
        return future

    def info(self) -> dict[str, Any]:
        backend_info: dict[str, Any] = {}
        try:
            backend_info = dict(self.backend.info())
        except Exception:  # info must never fail the endpoint
            backend_info = {}
        return {
            "worker": self.worker,
            "state": self.state,
            "error": self.error,
            "profile": self.settings.profile,
            "max_concurrency": self.settings.max_concurrency,
            "max_queue": self.settings.max_queue,
            "queue_depth": self.admission.waiting,
            "inflight": self.admission.inflight,
            **backend_info,
        }


class RequestMetrics(Protocol):
    """What :class:`RequestContextMiddleware` needs of a metrics object (workers' and the
    gateway's both have it)."""

    request_seconds: Histogram


class RequestContextMiddleware:
    """Pure ASGI middleware: request id in/out, body-size limit, latency metric, access log.

    Pure ASGI (not BaseHTTPMiddleware) so streaming responses and disconnects pass through.
    """

    def __init__(
        self, app: ASGIApp, metrics: RequestMetrics | None, max_body_bytes: int, logger_name: str
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.log = logging.getLogger(logger_name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
        token = request_id_var.set(rid)
        t0 = time.perf_counter()
        status = {"code": 500}

        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            resp = error_response(
                413,
                f"Request body is over the limit of {self.max_body_bytes} bytes.",
                headers={"X-Request-ID": rid},
            )
            await resp(scope, receive, send)
            request_id_var.reset(token)
            return

        received = {"n": 0}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received["n"] += len(message.get("body", b""))
                if received["n"] > self.max_body_bytes:
                    raise PayloadTooLarge(
                        f"Request body is over the limit of {self.max_body_bytes} bytes."
                    )
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except asyncio.CancelledError:
            # Cancelled before answering (lvi.timeouts' body deadline): not a server error.
            if status["code"] == 500:
                status["code"] = 499
            raise
        finally:
            dt = time.perf_counter() - t0
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            if self.metrics is not None and path not in ("/metrics",):
                self.metrics.request_seconds.labels(
                    route=path, method=scope["method"], status=str(status["code"])
                ).observe(dt)
            if not path.startswith(("/v2/health", "/healthz", "/readyz", "/metrics")):
                self.log.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status["code"],
                    extra={"status": status["code"], "ms": round(dt * 1000, 2), "route": path},
                )
            request_id_var.reset(token)


def get_runtime(request: Request) -> WorkerRuntime:
    rt: WorkerRuntime = request.app.state.runtime
    return rt


def get_deadline(request: Request) -> Deadline:
    """The request's deadline: ``X-Request-Timeout`` seconds (bounded), else the default."""
    rt = get_runtime(request)
    raw = request.headers.get("x-request-timeout")
    seconds = rt.settings.request_timeout_s
    if raw is not None:
        try:
            seconds = float(raw)
        except ValueError:
            raise BadRequest(
                "X-Request-Timeout must be a number of seconds.", param="X-Request-Timeout"
            ) from None
        if not (0 < seconds < float("inf")):
            raise BadRequest("X-Request-Timeout must be positive.", param="X-Request-Timeout")
        seconds = min(seconds, rt.settings.max_request_timeout_s)
    return Deadline.after(seconds)


RuntimeDep = Depends(get_runtime)
DeadlineDep = Depends(get_deadline)


def create_worker_app(
    worker: str,
    settings: WorkerSettings,
    backend: Any,
    router: APIRouter,
    *,
    title: str | None = None,
    description: str = "",
    on_fatal: Callable[[BaseException], None] | None = None,
    extra_startup: Callable[[WorkerRuntime], Awaitable[None]] | None = None,
) -> FastAPI:
    """Build a worker app around ``backend`` and the contract ``router``."""
    metrics = WorkerMetrics(worker)
    runtime = WorkerRuntime(worker, settings, backend, metrics, on_fatal=on_fatal)
    bind = getattr(backend, "bind_metrics", None)
    if callable(bind):
        bind(metrics.registry)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(runtime.load())
        if extra_startup is not None:
            await extra_startup(runtime)
        try:
            yield
        finally:
            runtime.state = "draining"
            metrics.ready.set(0)
            if not task.done():
                task.cancel()
            runtime.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title=title or f"lvi {worker} worker",
        description=description,
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    install_error_handlers(app)

    health = APIRouter(tags=["health"])

    @health.get("/v2/health/live", summary="Process is up (never touches the model).")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @health.get(
        "/v2/health/ready",
        summary="503 until the model is loaded and warmed up, and while draining.",
        responses={503: {"description": "Not ready"}},
    )
    async def ready() -> JSONResponse:
        body = {"status": runtime.state, "worker": worker}
        if runtime.error:
            body["error"] = runtime.error
        return JSONResponse(body, status_code=200 if runtime.ready else 503)

    @health.get("/metrics", summary="Prometheus metrics.")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @health.get(
        "/v1/info", summary="Model id, backend, device, dtype, concurrency and queue limit."
    )
    async def info() -> dict[str, Any]:
        return runtime.info()

    app.include_router(health)
    app.include_router(router)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        logger_name=f"lvi.{worker}.access",
    )
    return app
