"""Admission control of a worker: request deadlines, a bounded number of inferences in flight
with a bounded wait queue (429 beyond it, 504 when the deadline passes while queued), and the
:class:`Slot` through which every piece of work is admitted, timed and released.

:class:`lvi.worker.WorkerRuntime` hands out slots (``rt.slot(deadline)``); nothing else
touches :class:`Admission` or the metrics it updates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram

from lvi.errors import DeadlineExceeded, RateLimited


class AdmissionMetrics(Protocol):
    """The metrics admission control updates (a worker's :class:`lvi.worker.WorkerMetrics`)."""

    inference_seconds: Histogram
    inflight: Gauge
    queue_depth: Gauge
    rejected: Counter


@dataclass
class Deadline:
    """Absolute monotonic deadline of one request."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()


class Admission:
    """Bounded concurrency plus a bounded wait queue.

    A request beyond ``max_concurrency + max_queue`` is refused with 429 at once instead of
    queueing without bound; a queued request whose deadline passes leaves with 504.
    A slot is released only when the inference thread really ends, even if the client has
    gone: the accelerator is busy until then.
    """

    def __init__(self, max_concurrency: int, max_queue: int, metrics: AdmissionMetrics) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.metrics = metrics
        self._sem = asyncio.Semaphore(max_concurrency)
        self.waiting = 0
        self.inflight = 0
        self._avg_seconds = 1.0

    def retry_after(self) -> float:
        # Rough estimate: the queue ahead drains at max_concurrency jobs per average job time.
        return max(1.0, self._avg_seconds * (self.waiting + 1) / self.max_concurrency)

    async def acquire(self, deadline: Deadline) -> None:
        if self.inflight >= self.max_concurrency and self.waiting >= self.max_queue:
            self.metrics.rejected.labels(reason="queue_full").inc()
            raise RateLimited(
                f"The worker is busy ({self.inflight} running, {self.waiting} queued). Retry later.",
                retry_after=self.retry_after(),
                code="queue_full",
            )
        self.waiting += 1
        self.metrics.queue_depth.set(self.waiting)
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can drop an acquisition that
            # completes as the timeout fires, leaking a slot for good.
            async with asyncio.timeout(max(0.0, deadline.remaining())):
                await self._sem.acquire()
        except TimeoutError:
            self.metrics.rejected.labels(reason="deadline_in_queue").inc()
            raise DeadlineExceeded(
                "The request's deadline passed while it waited for a free slot."
            ) from None
        finally:
            self.waiting -= 1
            self.metrics.queue_depth.set(self.waiting)
        self.inflight += 1
        self.metrics.inflight.set(self.inflight)

    def release(self, seconds: float | None = None) -> None:
        self.inflight -= 1
        self.metrics.inflight.set(self.inflight)
        if seconds is not None:
            self._avg_seconds = 0.8 * self._avg_seconds + 0.2 * seconds
        self._sem.release()


class Slot:
    """One admission slot, held for a piece of work: the only way work gets onto the worker.

    Entering waits for a free slot under the request's deadline (429 when the queue is full,
    504 when the deadline passes while queued) after checking the worker is ready (503);
    :meth:`release` (idempotent, synchronous) records the time spent in
    ``lvi_inference_seconds`` and frees the slot. Use it as ``async with rt.slot(deadline):``
    around work done on the event loop (e.g. an upstream HTTP call), or ``await
    rt.slot(deadline).acquire()`` and call :meth:`release` yourself when the slot must outlive
    the block (a stream that ends later). Backends and routes never touch :class:`Admission`
    or the metrics directly.
    """

    def __init__(
        self,
        admission: Admission,
        metrics: AdmissionMetrics,
        deadline: Deadline,
        require_ready: Callable[[], None] | None = None,
    ) -> None:
        self.admission = admission
        self.metrics = metrics
        self.deadline = deadline
        self.require_ready = require_ready
        self._t0: float | None = None

    @property
    def held(self) -> bool:
        return self._t0 is not None

    async def acquire(self) -> Slot:
        """Wait for the slot (see the class); return ``self``, now held."""
        if self._t0 is not None:
            raise RuntimeError("this slot is already held")
        if self.require_ready is not None:
            self.require_ready()
        await self.admission.acquire(self.deadline)
        self._t0 = time.perf_counter()
        return self

    def release(self) -> None:
        """Free the slot; a no-op when it is not held (so every exit path may call it)."""
        if self._t0 is None:
            return
        dt = time.perf_counter() - self._t0
        self._t0 = None
        self.metrics.inference_seconds.observe(dt)
        self.admission.release(dt)

    async def __aenter__(self) -> Slot:
        return await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()
