"""GLIGEN workflows: a new image from a caption, and the grounded edits built on the same
call (``replace``, ``inpaint``, ``move`` with a phrase: see ``edits.py``).

Boxes arrive in pixels and go to GLIGEN normalised to 0..1 (:func:`normalise_box`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from pydantic import BaseModel, ValidationError

from lvi.contracts import gligen
from lvi.contracts.gateway import (
    GenerateRequest,
    InpaintRequest,
    MoveRequest,
    ProgressEvent,
    ReplaceRequest,
)
from lvi.errors import Unprocessable
from lvi.images import EncodedImage, EncodedMask

from ..clients import WorkerClients
from ..idempotency import EditContext
from .base import Editor, Event

#: The public requests that run GLIGEN (they share its sampling options).
DiffusionRequest = GenerateRequest | InpaintRequest | MoveRequest | ReplaceRequest


def normalise_box(
    box: Sequence[float], width: int, height: int, *, param: str
) -> tuple[list[float], list[int]]:
    """A pixel box -> (the 0..1 box GLIGEN wants, the clipped pixel box). Corners may come in
    any order; a box with no area inside the image is a 422."""
    x0, x1 = sorted((box[0], box[2]))
    y0, y1 = sorted((box[1], box[3]))
    x0, x1 = max(0.0, x0), min(float(width), x1)
    y0, y1 = max(0.0, y0), min(float(height), y1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise Unprocessable(
            f"Box {box} has no area inside the {width}x{height} image.", param=param
        )
    norm = [
        round(x0 / width, 6),
        round(y0 / height, 6),
        round(x1 / width, 6),
        round(y1 / height, 6),
    ]
    return norm, [int(x0), int(y0), round(x1), round(y1)]


def gligen_request(
    req: DiffusionRequest,
    prompt: str,
    phrases: list[str],
    boxes: list[list[float]],
    image: EncodedImage | None,
    mask: EncodedMask | None = None,
) -> gligen.GenerateRequest:
    """The worker's request for a public one: generation without ``image``, grounded
    inpainting with it. An unset beta is the worker's default (1.0 for inpainting, grounding
    on every step, as the original demo forced)."""
    width: int | None = None
    height: int | None = None
    beta: float | None = None
    if isinstance(req, GenerateRequest):
        beta = req.scheduled_sampling_beta
        if image is None:  # a size only when generating: inpainting keeps the image's
            width, height = req.width, req.height
    try:
        return gligen.GenerateRequest(
            prompt=prompt,
            phrases=phrases,
            boxes=boxes,
            image=image,
            mask=mask,
            steps=req.steps,
            guidance_scale=req.guidance_scale,
            negative_prompt=req.negative_prompt,
            seed=req.seed,
            width=width,
            height=height,
            scheduled_sampling_beta=beta,
        )
    except ValidationError as e:
        first = e.errors()[0]
        raise Unprocessable(f"Invalid generation request: {first['msg']}") from None


class GenerateService:
    """Runs GLIGEN for a session: streamed progress when the client streams, and the result
    committed as a new version."""

    def __init__(self, clients: WorkerClients, editor: Editor) -> None:
        self.clients = clients
        self.editor = editor

    async def generate(self, ctx: EditContext, req: GenerateRequest) -> AsyncIterator[Event]:
        """A new image from a caption (optionally grounded: boxes in output pixels)."""
        boxes = [
            normalise_box(b, req.width, req.height, param=f"boxes.{i}")[0]
            for i, b in enumerate(req.boxes)
        ]
        gen_req = gligen_request(req, req.prompt, req.phrases, boxes, None)
        async for ev in self.run_and_commit(ctx, gen_req, "generate", req):
            yield ev

    async def run(
        self, ctx: EditContext, req: gligen.GenerateRequest
    ) -> AsyncIterator[ProgressEvent | gligen.GenerateResponse]:
        """GLIGEN, streamed (progress events) when the client streams, else one call; the
        worker's response comes last."""
        if not ctx.stream:
            yield ProgressEvent(stage="generate")
            yield await self.clients.generate(req)
            return
        # The first event goes out before the worker is called, so the stream starts at once
        # (a queued run still gets pings). It is the one step-0 event when the step count is
        # known; otherwise the worker's ``start`` (with its total) is, so none repeats.
        first = ProgressEvent(stage="generate", step=0 if req.steps else None, total=req.steps)
        yield first
        async for ev in self.clients.generate_stream(req):
            if isinstance(ev, gligen.Started):
                if first.step is None or ev.total != first.total:
                    yield ProgressEvent(stage="generate", step=0, total=ev.total)
            elif isinstance(ev, gligen.Progress):
                yield ProgressEvent(stage="generate", step=ev.step, total=ev.total)
            else:
                yield ev

    async def run_and_commit(
        self, ctx: EditContext, gen_req: gligen.GenerateRequest, operation: str, req: BaseModel
    ) -> AsyncIterator[Event]:
        """Run GLIGEN and commit its image as ``operation`` with ``req``'s parameters."""
        result: gligen.GenerateResponse | None = None
        async for ev in self.run(ctx, gen_req):
            if isinstance(ev, gligen.GenerateResponse):
                result = ev
            else:
                yield ev
        assert result is not None
        yield await self.editor.commit(
            ctx, result.image, operation, req.model_dump(exclude_none=True), seed=result.seed
        )
