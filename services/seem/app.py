"""The seem worker's FastAPI app: one thin route over the backend ``SEEM_BACKEND`` names."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from lvi.contracts.seem import SegmentRequest, SegmentResponse
from lvi.errors import ErrorEnvelope
from lvi.worker import Deadline, DeadlineDep, RuntimeDep, WorkerRuntime, create_worker_app
from services.seem.backends import build_backend
from services.seem.settings import SeemSettings

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorEnvelope} for code in (400, 413, 415, 422, 429, 503, 504)
}


def build_router() -> APIRouter:
    router = APIRouter(tags=["seem"], responses=ERRORS)

    @router.post(
        "/v1/segment",
        response_model=SegmentResponse,
        summary="Masks from points, boxes, a stroke and/or text.",
    )
    async def segment(
        req: SegmentRequest, rt: WorkerRuntime = RuntimeDep, deadline: Deadline = DeadlineDep
    ) -> SegmentResponse:
        rt.require_ready()
        rt.backend.validate(req)  # refuse bad prompts before they wait for a slot
        return await rt.run(rt.backend.segment, req, deadline=deadline)

    return router


def create_app(settings: SeemSettings | None = None, backend: object | None = None) -> FastAPI:
    """App factory: ``backend`` may be injected (tests); by default it is built from settings."""
    settings = settings or SeemSettings()
    backend = backend or build_backend(settings)
    return create_worker_app(
        "seem",
        settings,
        backend,
        build_router(),
        description=(
            "Interactive segmentation: clicks, boxes, strokes and text to masks "
            "(SAM + Grounding DINO, or OpenCV GrabCut), with an image-embedding cache."
        ),
    )
