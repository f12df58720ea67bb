"""The inpaint worker's FastAPI app: thin routes over the backend ``INPAINT_BACKEND`` names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

from lvi.contracts.inpaint import (
    CompositeRequest,
    CompositeResponse,
    InpaintRequest,
    InpaintResponse,
)
from lvi.errors import ErrorEnvelope
from lvi.pixels import model_json
from lvi.worker import (
    Deadline,
    DeadlineDep,
    Job,
    RuntimeDep,
    WorkerRuntime,
    create_worker_app,
)
from services.inpaint.backends import build_backend
from services.inpaint.settings import InpaintSettings

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorEnvelope} for code in (400, 413, 415, 422, 429, 503, 504)
}


def rendered(call: Callable[[Any, Job], BaseModel]) -> Callable[[Any, Job], bytes]:
    """``call`` followed by its JSON rendering, so both run in the inference pool: a multi-MB
    image is base64-encoded straight into the body (:func:`lvi.pixels.model_json`), off the
    event loop, instead of FastAPI re-validating and re-serialising the response model. The
    bytes are the ones FastAPI would send; ``response_model`` still documents them."""

    def run(req: Any, job: Job) -> bytes:
        return model_json(call(req, job))

    return run


async def answer(
    rt: WorkerRuntime,
    call: Callable[[Any, Job], BaseModel],
    req: Any,
    request: Request,
    deadline: Deadline,
) -> Response:
    """Run ``call`` in the pool and answer its JSON; a caller that hangs up (the gateway, when
    its client dropped a stream) cancels the job."""
    body = await rt.run(
        rendered(call), req, deadline=deadline, disconnected=request.is_disconnected
    )
    return Response(body, media_type="application/json")


def build_router() -> APIRouter:
    router = APIRouter(tags=["inpaint"], responses=ERRORS)

    @router.post("/v1/inpaint", response_model=InpaintResponse, summary="Fill a masked region.")
    async def inpaint(
        req: InpaintRequest,
        request: Request,
        rt: WorkerRuntime = RuntimeDep,
        deadline: Deadline = DeadlineDep,
    ) -> Response:
        return await answer(rt, rt.backend.inpaint, req, request, deadline)

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
    ) -> Response:
        return await answer(rt, rt.backend.composite, req, request, deadline)

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
