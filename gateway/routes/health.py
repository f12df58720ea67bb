"""Liveness, readiness (Redis and every worker), service info, usage and metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lvi.contracts.gateway import Readiness, ServiceInfo, Usage, WorkerStatus
from lvi.errors import LviError
from lvi.registry import RANDOM_PROFILES

from ..clients import WorkerClients
from ..deps import ClientsDep, PrincipalDep, SettingsDep, StoreDep
from ..sessions import SessionStore
from .common import ERRORS

VERSION = "1.0.0"


async def worker_statuses(clients: WorkerClients, timeout: float) -> list[WorkerStatus]:
    """Probe every worker at once (short timeout, breaker untouched)."""
    names = list(clients.workers)
    results = await asyncio.gather(*(clients[n].probe(timeout) for n in names))
    out = []
    for name, (state, info, error) in zip(names, results, strict=True):
        w = clients[name]
        out.append(
            WorkerStatus(
                name=name, skill=w.skill, url=w.base_url, state=state, info=info, error=error
            )
        )
    return out


class InfoCache:
    """``/v1/info`` is polled by every UI; cache the probes for a few seconds."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self.at = 0.0
        self.value: list[WorkerStatus] | None = None
        self.lock = asyncio.Lock()

    async def get(self, clients: WorkerClients, timeout: float) -> list[WorkerStatus]:
        async with self.lock:
            if self.value is None or time.monotonic() - self.at > self.ttl:
                self.value = await worker_statuses(clients, timeout)
                self.at = time.monotonic()
            return self.value


class ReadyCache:
    """``/readyz`` answers from a probe at most ``ttl`` seconds old: a flood of (unauthenticated)
    readiness calls costs one Redis write probe and one round of worker probes per ``ttl``,
    not one per call."""

    def __init__(self, ttl: float = 1.5) -> None:
        self.ttl = ttl
        self.at = 0.0
        self.value: tuple[str, list[WorkerStatus]] | None = None
        self.lock = asyncio.Lock()

    async def get(
        self, store: SessionStore, clients: WorkerClients, timeout: float
    ) -> tuple[str, list[WorkerStatus]]:
        async with self.lock:
            if self.value is None or time.monotonic() - self.at > self.ttl:
                self.value = await asyncio.gather(
                    store.write_probe(), worker_statuses(clients, timeout)
                )
                self.at = time.monotonic()
            return self.value


def _public(w: WorkerStatus) -> WorkerStatus:
    """What an unauthenticated caller may see of a worker: its name and state, no model
    paths, addresses or error texts."""
    return WorkerStatus(name=w.name, skill=w.skill, url="", state=w.state)


def _authenticated(request: Request) -> bool:
    header = request.headers.get("authorization")
    if not header:
        return False
    try:
        request.app.state.auth.authenticate(header)
    except LviError:
        return False
    return True


#: Backends that need no weights: real results in any profile (GrabCut, OpenCV fill).
CLASSICAL_BACKENDS = frozenset({"grabcut", "opencv"})


def random_skills(workers: list[WorkerStatus]) -> list[str]:
    """Skills whose worker runs random weights (the tiny models of the tiny or local profile),
    so its outputs are meaningless; a classical backend gives real results in any profile."""
    return sorted(
        w.skill
        for w in workers
        if w.info
        and w.info.get("profile") in RANDOM_PROFILES
        and w.info.get("backend") not in CLASSICAL_BACKENDS
    )


def build_router() -> APIRouter:
    router = APIRouter(tags=["service"])
    cache = InfoCache()
    ready_cache = ReadyCache()

    @router.get("/healthz", summary="The gateway process is up.")
    async def healthz() -> dict[str, str]:
        return {"status": "live"}

    @router.get(
        "/readyz",
        response_model=Readiness,
        summary="Ready when Redis answers (cached 1.5 s); each worker's state. Redis 'full': "
        "reads work, writes answer 507. Worker details only with a valid key.",
        responses={503: {"description": "Redis is unreachable"}},
    )
    async def readyz(
        request: Request, store: StoreDep, clients: ClientsDep, s: SettingsDep
    ) -> JSONResponse:
        redis_state, workers = await ready_cache.get(store, clients, s.probe_timeout_s)
        if not _authenticated(request):
            workers = [_public(w) for w in workers]
        # A full store stays in rotation (200, status "degraded"): reads still work there,
        # and pulling every gateway out of the load balancer would turn a full store into
        # a total outage. Monitoring alerts on redis == "full" (and on the metric).
        reachable = redis_state in ("ok", "full")
        body = Readiness(
            status="ready" if redis_state == "ok" else ("degraded" if reachable else "not_ready"),
            redis=redis_state,
            workers=workers,
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if reachable else 503)

    @router.get(
        "/v1/usage",
        response_model=Usage,
        summary="Where the caller stands against its quotas (bytes, sessions, long jobs).",
        responses=ERRORS,
    )
    async def usage(who: PrincipalDep, request: Request) -> Usage:
        result: Usage = await request.app.state.quotas.usage(who)
        return result

    @router.get(
        "/v1/info",
        response_model=ServiceInfo,
        summary="Limits and every worker's /v1/info (random_weights: the tiny profile).",
        responses=ERRORS,
    )
    async def info(who: PrincipalDep, clients: ClientsDep, s: SettingsDep) -> ServiceInfo:
        workers = await cache.get(clients, s.probe_timeout_s)
        profiles: dict[str, str] = {
            w.name: str(w.info.get("profile")) for w in workers if w.info and w.info.get("profile")
        }
        limits: dict[str, Any] = {
            "max_body_bytes": s.max_body_bytes,
            "max_image_bytes": s.max_image_bytes,
            "max_image_pixels": s.max_image_pixels,
            "max_versions": s.max_versions,
            "max_session_bytes": s.max_session_bytes,
            "session_ttl_s": s.session_ttl_s,
            "rate_limit_per_minute": s.rate_limit_per_minute,
        }
        random = random_skills(workers)
        return ServiceInfo(
            version=VERSION,
            random_weights=bool(random),
            random_skills=random,
            profiles=profiles,
            limits=limits,
            workers=workers,
        )

    @router.get("/metrics", summary="Prometheus metrics.")
    async def metrics(request: Request) -> Response:
        return Response(
            generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    return router
