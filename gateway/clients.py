"""Typed async clients of the model workers, with timeouts, safe retries and circuit breakers.

- One pooled ``httpx.AsyncClient`` per worker (keep-alive connections, a per-worker timeout).
- Retries only where safe: httpx's transport retries a connection that failed *before* the
  request was sent (``retries=N``: connect errors and connect timeouts). A request that
  reached the worker is never sent again, because inference is expensive and a read timeout
  may mean it is still running.
- A circuit breaker per worker: after N consecutive failures (unreachable, 5xx, timeout) the
  worker's calls answer 503 at once, naming the skill, for ``breaker_reset_s``; then one
  trial call decides. A 4xx or a 429 (busy) is the worker working, not failing.
- ``X-Request-ID`` and the remaining deadline (``X-Request-Timeout``) go to the worker.
- Worker errors come back as our errors with the worker's message: its 4xx keep their
  status, its 429 keeps Retry-After, 503 names the skill, 504 stays 504, the rest is 502.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from httpx_sse import EventSource
from pydantic import BaseModel, ValidationError

from lvi import registry
from lvi.contracts import gligen, llava, seem
from lvi.contracts import inpaint as inpaint_api
from lvi.errors import (
    BadGateway,
    DeadlineExceeded,
    LviError,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    error_for_status,
)
from lvi.internal_auth import internal_headers
from lvi.logs import request_id_var
from lvi_client.errors import status_of_type

from .metrics import GatewayMetrics
from .settings import WORKER_NAMES, GatewaySettings

log = logging.getLogger("lvi.gateway.clients")
M = TypeVar("M", bound=BaseModel)

SKILLS = {w.name: w.skill for w in registry.WORKERS}

# A worker's answer with one of these statuses is our request's fault: relayed as it is.
_RELAYED_STATUSES = frozenset({400, 404, 409, 413, 415, 422})


class CircuitBreaker:
    """Closed -> open after ``failures`` consecutive failures -> half-open after ``reset_s``
    (one trial call) -> closed on success, open again on failure.

    Hand-written because it is small and must speak our errors; asyncio is single-threaded,
    so plain attributes are enough.
    """

    def __init__(self, failures: int, reset_s: float) -> None:
        self.threshold = failures
        self.reset_s = reset_s
        self.failures = 0
        self.opened_at: float | None = None
        self.trial_running = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at >= self.reset_s:
            return "half_open"
        return "open"

    def retry_after(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.reset_s - (time.monotonic() - self.opened_at))

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one trial at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self.trial_running:
            self.trial_running = True
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.trial_running = False

    def failure(self) -> None:
        self.failures += 1
        self.trial_running = False
        if self.opened_at is not None or self.failures >= self.threshold:
            self.opened_at = time.monotonic()

    def release_trial(self) -> None:
        """A trial call that ended neither way (e.g. cancelled) frees the slot."""
        self.trial_running = False


@dataclass
class WorkerClient:
    """One worker: its pooled HTTP client, breaker and timeout."""

    name: str
    base_url: str
    timeout_s: float
    http: httpx.AsyncClient
    breaker: CircuitBreaker
    metrics: GatewayMetrics | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def skill(self) -> str:
        return SKILLS.get(self.name, self.name)

    def unavailable(self, why: str, retry_after: float = 5.0) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"The {self.skill} skill ({self.name} worker) is unavailable: {why}. "
            "Other skills keep working.",
            code=f"{self.name}_unavailable",
            param=self.name,
            headers={"Retry-After": str(max(1, round(retry_after)))},
        )

    def _headers(self, deadline: float | None, stream: bool) -> dict[str, str]:
        headers = {"X-Request-ID": request_id_var.get()}
        budget = self.timeout_s if deadline is None else min(self.timeout_s, deadline)
        headers["X-Request-Timeout"] = f"{max(0.1, budget):.3f}"
        if stream:
            headers["Accept"] = "text/event-stream"
        return headers

    def _check_breaker(self) -> None:
        if not self.breaker.allow():
            if self.metrics:
                self.metrics.worker_calls.labels(self.name, "circuit_open").inc()
            raise self.unavailable(
                "it failed repeatedly and is paused", self.breaker.retry_after() or 1.0
            )

    def _observe(self, endpoint: str, outcome: str, t0: float) -> None:
        if self.metrics:
            self.metrics.worker_calls.labels(self.name, outcome).inc()
            self.metrics.worker_seconds.labels(self.name, endpoint, outcome).observe(
                time.perf_counter() - t0
            )
            self.metrics.breaker_open.labels(self.name).set(
                0 if self.breaker.state == "closed" else 1
            )

    def _transport_error(self, e: httpx.HTTPError) -> LviError:
        """Map an httpx failure to our error and record it on the breaker."""
        self.breaker.failure()
        if isinstance(e, httpx.TimeoutException) and not isinstance(e, httpx.ConnectTimeout):
            return DeadlineExceeded(
                f"The {self.skill} skill ({self.name} worker) did not answer within "
                f"{self.timeout_s:g} s; nothing was saved.",
                code=f"{self.name}_timeout",
                param=self.name,
            )
        return self.unavailable("it cannot be reached")

    def _status_error(self, status: int, body: bytes, headers: httpx.Headers) -> LviError:
        """Map a worker's error response to ours, keeping its message."""
        message, code, param = f"{self.name} worker answered {status}", None, None
        try:
            err = json.loads(body)["error"]
            message = str(err.get("message") or message)
            code, param = err.get("code"), err.get("param")
        except (ValueError, KeyError, TypeError):
            pass
        if status == 429:
            self.breaker.success()  # busy, not broken
            retry_after = float(headers.get("retry-after") or 1)
            return RateLimited(
                f"The {self.skill} skill is busy: {message}",
                retry_after=retry_after,
                code=f"{self.name}_busy",
            )
        if status in _RELAYED_STATUSES:
            self.breaker.success()  # the worker works; our request was wrong
            return error_for_status(status, message, code=code, param=param)
        self.breaker.failure()
        if status == 503:
            return self.unavailable(f"it is not ready ({message})")
        if status == 504:
            return DeadlineExceeded(
                f"The {self.skill} skill ({self.name} worker) ran out of time: {message}",
                code=f"{self.name}_timeout",
                param=self.name,
            )
        return BadGateway(
            f"The {self.name} worker failed ({status}): {message}",
            code=f"{self.name}_error",
            param=self.name,
        )

    async def post(
        self, path: str, body: BaseModel, response: type[M], *, deadline: float | None = None
    ) -> M:
        """POST a contract model and parse the contract response."""
        raw = await self.request("POST", path, content=body.model_dump_json(), deadline=deadline)
        return self._parse(response, raw)

    async def request(
        self,
        method: str,
        path: str,
        *,
        content: str | bytes | None = None,
        deadline: float | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """One call; returns the body of a 2xx answer, raises our error otherwise."""
        self._check_breaker()
        t0 = time.perf_counter()
        try:
            resp = await self.http.request(
                method,
                path,
                content=content,
                headers={**self._headers(deadline, False), "Content-Type": "application/json"},
                timeout=timeout,
            )
        except httpx.HTTPError as e:
            err = self._transport_error(e)
            self._observe(path, type(err).__name__, t0)
            raise err from None
        except BaseException:
            self.breaker.release_trial()
            raise
        if resp.status_code >= 400:
            err = self._status_error(resp.status_code, resp.content, resp.headers)
            self._observe(path, str(resp.status_code), t0)
            raise err
        self.breaker.success()
        self._observe(path, "ok", t0)
        return resp.content

    async def stream(
        self, path: str, body: BaseModel, *, deadline: float | None = None
    ) -> AsyncGenerator[tuple[str, str], None]:
        """POST with ``Accept: text/event-stream``; yield ``(event, data)`` pairs.

        Closing the iterator closes the connection, which tells the worker to stop.
        """
        self._check_breaker()
        t0 = time.perf_counter()
        headers = {**self._headers(deadline, True), "Content-Type": "application/json"}
        outcome = "ok"
        try:
            async with self.http.stream(
                "POST", path, content=body.model_dump_json(), headers=headers
            ) as resp:
                if resp.status_code >= 400:
                    data = await resp.aread()
                    outcome = str(resp.status_code)
                    raise self._status_error(resp.status_code, data, resp.headers)
                ctype = resp.headers.get("content-type", "")
                if not ctype.startswith("text/event-stream"):
                    self.breaker.failure()
                    outcome = "bad_answer"
                    raise BadGateway(
                        f"The {self.name} worker answered {ctype or 'no content type'} "
                        "instead of an event stream.",
                        code=f"{self.name}_bad_answer",
                        param=self.name,
                    )
                self.breaker.success()
                async for ev in EventSource(resp).aiter_sse():
                    yield ev.event, ev.data
        except httpx.HTTPError as e:
            err = self._transport_error(e)
            outcome = type(err).__name__
            raise err from None
        finally:
            self.breaker.release_trial()
            self._observe(path, outcome, t0)

    def _parse(self, model: type[M], raw: bytes) -> M:
        try:
            return model.model_validate_json(raw)
        except PayloadTooLarge as e:
            # The worker did its job, but its image is over this gateway's image limits (an
            # explicit LVI_MAX_IMAGE_BYTES below what the pixel limit implies): say so, rather
            # than blaming the worker.
            raise PayloadTooLarge(
                f"The {self.skill} result is over the image limits, so it was not saved: "
                f"{e.message} Raise LVI_MAX_IMAGE_BYTES, or leave it unset to derive it from "
                "LVI_MAX_IMAGE_PIXELS.",
                code="result_too_large",
                param=self.name,
            ) from None
        except (ValidationError, LviError, ValueError) as e:
            log.error("bad answer from %s: %s", self.name, e)
            raise BadGateway(
                f"The {self.name} worker sent an answer the gateway cannot read.",
                code=f"{self.name}_bad_answer",
                param=self.name,
            ) from None

    def raise_stream_error(self, data: str) -> None:
        """An ``event: error`` from a worker's stream, as our error."""
        err = self._status_error(_status_of(data), data.encode(), httpx.Headers())
        raise err

    async def probe(self, timeout: float) -> tuple[str, dict[str, Any] | None, str | None]:
        """(state, /v1/info, error) without touching the breaker."""
        if self.breaker.state == "open":
            return "circuit_open", None, "circuit open after repeated failures"
        try:
            ready = await self.http.get("/v2/health/ready", timeout=timeout)
            info_resp = await self.http.get("/v1/info", timeout=timeout)
            info = info_resp.json() if info_resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as e:
            return "unreachable", None, type(e).__name__
        if ready.status_code == 200:
            return "ready", info, None
        return "not_ready", info, ready.text[:200]

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self.http.aclose()


def _status_of(data: str) -> int:
    """The HTTP status that an error envelope's type stands for (streamed errors have none)."""
    try:
        etype = json.loads(data)["error"]["type"]
    except (ValueError, KeyError, TypeError):
        return 502
    return status_of_type(str(etype), default=502)


class WorkerClients:
    """The four workers' typed clients. ``create_app`` builds one unless tests inject it."""

    def __init__(self, workers: dict[str, WorkerClient]) -> None:
        self.workers = workers

    @classmethod
    def from_settings(
        cls,
        settings: GatewaySettings,
        metrics: GatewayMetrics | None = None,
        transports: dict[str, httpx.AsyncBaseTransport] | None = None,
    ) -> WorkerClients:
        """Build the pooled clients. ``transports`` replaces a worker's transport (tests)."""
        workers: dict[str, WorkerClient] = {}
        for name in WORKER_NAMES:
            timeout = settings.worker_timeout(name)
            transport = (transports or {}).get(name) or httpx.AsyncHTTPTransport(
                retries=settings.connect_retries,
                limits=httpx.Limits(
                    max_connections=settings.max_connections, max_keepalive_connections=16
                ),
            )
            http = httpx.AsyncClient(
                base_url=settings.worker_url(name),
                headers=internal_headers(),  # LVI_INTERNAL_TOKEN: workers answer only us
                transport=transport,
                timeout=httpx.Timeout(timeout, connect=settings.connect_timeout_s),
            )
            workers[name] = WorkerClient(
                name,
                settings.worker_url(name),
                timeout,
                http,
                CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s),
                metrics,
            )
        return cls(workers)

    def __getitem__(self, name: str) -> WorkerClient:
        return self.workers[name]

    async def aclose(self) -> None:
        for w in self.workers.values():
            await w.aclose()

    # -- typed calls ------------------------------------------------------------------------
    async def segment(self, req: seem.SegmentRequest) -> seem.SegmentResponse:
        return await self.workers["seem"].post("/v1/segment", req, seem.SegmentResponse)

    async def inpaint(self, req: inpaint_api.InpaintRequest) -> inpaint_api.InpaintResponse:
        return await self.workers["inpaint"].post("/v1/inpaint", req, inpaint_api.InpaintResponse)

    async def composite(self, req: inpaint_api.CompositeRequest) -> inpaint_api.CompositeResponse:
        return await self.workers["inpaint"].post(
            "/v1/composite", req, inpaint_api.CompositeResponse
        )

    async def generate(self, req: gligen.GenerateRequest) -> gligen.GenerateResponse:
        return await self.workers["gligen"].post("/v1/generate", req, gligen.GenerateResponse)

    async def generate_stream(
        self, req: gligen.GenerateRequest
    ) -> AsyncIterator[gligen.Started | gligen.Progress | gligen.GenerateResponse]:
        """GLIGEN with progress: yields Started, Progress events, then the GenerateResponse."""
        w = self.workers["gligen"]
        got_result = False
        async for event, data in w.stream("/v1/generate", req):
            if event in ("start", "progress"):
                model = gligen.Started if event == "start" else gligen.Progress
                try:
                    yield model.model_validate_json(data)
                except ValidationError:
                    continue  # a malformed progress event is not worth failing the edit
            elif event == "result":
                got_result = True
                yield w._parse(gligen.GenerateResponse, data.encode())
            elif event == "error":
                w.raise_stream_error(data)
        if not got_result:
            raise BadGateway(
                "The gligen worker's stream ended without a result.", code="gligen_bad_answer"
            )

    async def chat(self, req: llava.ChatCompletionRequest) -> llava.ChatCompletionResponse:
        return await self.workers["llava"].post(
            "/v1/chat/completions", req, llava.ChatCompletionResponse
        )

    async def chat_stream(
        self, req: llava.ChatCompletionRequest
    ) -> AsyncIterator[llava.ChatCompletionChunk]:
        """Streamed chat: yields the OpenAI chunks until ``data: [DONE]``."""
        w = self.workers["llava"]
        body = req.model_copy(update={"stream": True})
        async for event, data in w.stream("/v1/chat/completions", body):
            if data.strip() == "[DONE]":
                return
            if event == "error" or data.lstrip().startswith('{"error"'):
                w.raise_stream_error(data)
            try:
                yield llava.ChatCompletionChunk.model_validate_json(data)
            except ValidationError:
                raise BadGateway(
                    "The llava worker sent a chunk the gateway cannot read.",
                    code="llava_bad_answer",
                ) from None
