"""The inpaint worker's FastAPI app: thin routes over the backend ``INPAINT_BACKEND`` names."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request

from lvi.contracts.inpaint import (
    CompositeRequest,
    CompositeResponse,
    InpaintRequest,
    InpaintResponse,
)
from lvi.errors import ErrorEnvelope
from lvi.worker import Deadline, DeadlineDep, RuntimeDep, WorkerRuntime, create_worker_app
from services.inpaint.backends import build_backend
from services.inpaint.settings import InpaintSettings

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorEnvelope} for code in (400, 413, 415, 422, 429, 503, 504)
}


def build_router() -> APIRouter:
    router = APIRouter(tags=["inpaint"], responses=ERRORS)

    @router.post("/v1/inpaint", response_model=InpaintResponse, summary="Fill a masked region.")
    async def inpaint(
        req: InpaintRequest,
        request: Request,
        rt: WorkerRuntime = RuntimeDep,
        deadline: Deadline = DeadlineDep,
    ) -> InpaintResponse:
        # A caller that hangs up (the gateway, when its client dropped a stream) cancels the job.
        return await rt.run(
            rt.backend.inpaint, req, deadline=deadline, disconnected=request.is_disconnected
        )

    @router.post(
        "/v1/composite",
        response_model=CompositeResponse,
        summary="Paste masked pixels of one image at an offset onto another.",
    )
    async def composite(
        req: CompositeRequest,
        request: Request,
        rt: WorkerRuntime = RuntimeDep,
        deadline: Deadline = DeadlineDep,
    ) -> CompositeResponse:
        return await rt.run(
            rt.backend.composite, req, deadline=deadline, disconnected=request.is_disconnected
        )

    return router


def create_app(settings: InpaintSettings | None = None, backend: object | None = None) -> FastAPI:
    """App factory: ``backend`` may be injected (tests); by default it is built from settings."""
    settings = settings or InpaintSettings()
    backend = backend or build_backend(settings)
    return create_worker_app(
        "inpaint",
        settings,
        backend,
        build_router(),
        description="Background filling (LaMa or OpenCV) and compositing at full resolution.",
    )
