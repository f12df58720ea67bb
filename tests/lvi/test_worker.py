"""The worker runtime's admission control, deadlines, streaming and cancellation.

These are unit tests of :class:`WorkerRuntime` with a small in-process backend; the same
behaviour is exercised over HTTP against real worker processes in tests/services/.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from lvi.errors import DeadlineExceeded, RateLimited, ServiceUnavailable
from lvi.settings import WorkerSettings
from lvi.worker import (
    Cancelled,
    ClientDisconnected,
    Deadline,
    Job,
    WorkerMetrics,
    WorkerRuntime,
    build_backend,
)

pytestmark = pytest.mark.anyio


class SlowBackend:
    name = "slow"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.cancelled_runs = 0
        self.finished_runs = 0

    def load(self) -> None: ...

    def warmup(self) -> None: ...

    def info(self) -> dict[str, Any]:
        return {"backend": "slow"}

    def work(self, steps: int, job: Job) -> int:
        for i in range(steps):
            job.emit(("progress", i + 1))
            if self.release.wait(0.01):
                pass
            try:
                job.check()
            except Cancelled:
                self.cancelled_runs += 1
                raise
        self.finished_runs += 1
        return steps

    def blocked(self, _: int, job: Job) -> str:
        self.release.wait(10)
        return "done"


async def make_runtime(concurrency: int = 1, queue: int = 1) -> tuple[WorkerRuntime, SlowBackend]:
    backend = SlowBackend()
    settings = WorkerSettings(max_concurrency=concurrency, max_queue=queue, profile="tiny")
    rt = WorkerRuntime("test", settings, backend, WorkerMetrics("test"))
    await rt.load()
    assert rt.state == "ready"
    return rt, backend


async def test_not_ready_is_503() -> None:
    backend = SlowBackend()
    rt = WorkerRuntime("t", WorkerSettings(profile="tiny"), backend, WorkerMetrics("t"))
    with pytest.raises(ServiceUnavailable):
        await rt.run(backend.work, 1, deadline=Deadline.after(1))


async def test_queue_full_is_429_and_admitted_requests_complete() -> None:
    rt, backend = await make_runtime(concurrency=1, queue=1)
    first = asyncio.create_task(rt.run(backend.blocked, 0, deadline=Deadline.after(10)))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(rt.run(backend.blocked, 0, deadline=Deadline.after(10)))
    await asyncio.sleep(0.05)
    assert rt.admission.inflight == 1 and rt.admission.waiting == 1
    with pytest.raises(RateLimited) as exc:
        await rt.run(backend.blocked, 0, deadline=Deadline.after(10))
    assert int(exc.value.headers["Retry-After"]) >= 1
    backend.release.set()
    assert await first == "done" and await second == "done"
    assert rt.admission.inflight == 0


async def test_deadline_abandons_work_and_slot_is_freed_when_thread_ends() -> None:
    rt, backend = await make_runtime()
    with pytest.raises(DeadlineExceeded):
        await rt.run(backend.work, 10_000, deadline=Deadline.after(0.1))
    # The thread sees the cancel flag at its next check and stops early.
    for _ in range(200):
        if rt.admission.inflight == 0:
            break
        await asyncio.sleep(0.01)
    assert rt.admission.inflight == 0
    assert backend.cancelled_runs == 1 and backend.finished_runs == 0
    assert await rt.run(backend.work, 2, deadline=Deadline.after(5)) == 2


async def test_deadline_while_queued_is_504() -> None:
    rt, backend = await make_runtime(concurrency=1, queue=4)
    blocker = asyncio.create_task(rt.run(backend.blocked, 0, deadline=Deadline.after(10)))
    await asyncio.sleep(0.05)
    with pytest.raises(DeadlineExceeded):
        await rt.run(backend.work, 1, deadline=Deadline.after(0.1))
    backend.release.set()
    await blocker


async def test_stream_yields_events_then_result() -> None:
    rt, backend = await make_runtime()
    events = [ev async for ev in rt.stream(backend.work, 3, deadline=Deadline.after(5))]
    assert events == [("progress", 1), ("progress", 2), ("progress", 3), ("result", 3)]


async def test_closing_a_stream_cancels_the_job() -> None:
    rt, backend = await make_runtime()
    agen = rt.stream(backend.work, 100_000, deadline=Deadline.after(30))
    seen = 0
    async for _ in agen:
        seen += 1
        if seen == 3:
            break
    await agen.aclose()  # what a client disconnect does
    t0 = time.monotonic()
    while rt.admission.inflight and time.monotonic() - t0 < 5:
        await asyncio.sleep(0.01)
    assert rt.admission.inflight == 0
    assert backend.cancelled_runs == 1


async def test_a_client_that_hangs_up_cancels_a_plain_request() -> None:
    rt, backend = await make_runtime()
    gone = {"after": 0}

    async def disconnected() -> bool:
        gone["after"] += 1
        return gone["after"] >= 2  # the second poll finds the client gone

    with pytest.raises(ClientDisconnected):
        await rt.run(backend.work, 100_000, deadline=Deadline.after(30), disconnected=disconnected)
    t0 = time.monotonic()
    while rt.admission.inflight and time.monotonic() - t0 < 5:
        await asyncio.sleep(0.01)
    assert rt.admission.inflight == 0 and backend.cancelled_runs == 1
    # A client that stays gets its answer.
    assert (
        await rt.run(backend.work, 2, deadline=Deadline.after(5), disconnected=lambda: _no()) == 2
    )


async def _no() -> bool:
    return False


async def test_slot_admits_times_and_frees_work_outside_the_pool() -> None:
    rt, _backend = await make_runtime(concurrency=1, queue=1)

    def observed() -> float:
        (metric,) = rt.metrics.inference_seconds.collect()
        return {s.name: s.value for s in metric.samples}["lvi_inference_seconds_count"]

    count = observed()
    async with rt.slot(Deadline.after(5)) as held:
        assert held.held and rt.admission.inflight == 1
        # A second request waits in the queue; a third is refused with 429.
        waiting = asyncio.create_task(rt.slot(Deadline.after(5)).acquire())
        await asyncio.sleep(0.05)
        assert rt.admission.waiting == 1
        with pytest.raises(RateLimited):
            await rt.slot(Deadline.after(5)).acquire()
    assert not held.held
    second = await waiting  # admitted once the first left its block
    assert rt.admission.inflight == 1
    second.release()
    second.release()  # idempotent: every exit path may call it
    assert rt.admission.inflight == 0 and rt.admission.waiting == 0
    assert observed() == count + 2


async def test_slot_is_freed_on_error_and_refuses_when_not_ready_or_late() -> None:
    rt, _backend = await make_runtime(concurrency=1, queue=4)
    with pytest.raises(KeyError):
        async with rt.slot(Deadline.after(5)):
            raise KeyError("boom")
    assert rt.admission.inflight == 0
    # Deadline passing while queued: 504, and the queue is left as it was.
    held = await rt.slot(Deadline.after(5)).acquire()
    with pytest.raises(DeadlineExceeded):
        await rt.slot(Deadline.after(0.05)).acquire()
    assert rt.admission.waiting == 0
    held.release()
    rt.state = "draining"
    with pytest.raises(ServiceUnavailable):
        await rt.slot(Deadline.after(5)).acquire()
    assert rt.admission.inflight == 0


def test_build_backend_picks_by_name_and_lists_the_choices() -> None:
    class Settings(WorkerSettings):
        worker = "demo"

    made: list[str] = []

    def factory(tag: str) -> Any:
        def build(settings: WorkerSettings) -> str:
            made.append(f"{tag}:{settings.backend}")
            return tag

        return build

    backends = {"fast": factory("fast"), "slow": factory("slow")}
    assert build_backend(backends, Settings(profile="tiny"), default="slow") == "slow"
    assert (
        build_backend(backends, Settings(profile="tiny", backend="Fast"), default="slow") == "fast"
    )
    assert made == ["slow:None", "fast:Fast"]
    with pytest.raises(ValueError, match="DEMO_BACKEND must be one of 'fast', 'slow', not 'x'"):
        build_backend(backends, Settings(profile="tiny", backend="x"), default="slow")
