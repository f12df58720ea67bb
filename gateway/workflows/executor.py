"""Runs a :class:`~gateway.planner.Plan` step by step as the ordinary workflows (issue 15).

Each step is the same workflow its own route runs (segment, remove, replace, move, inpaint,
generate, undo, redo), on the caller's session only: the session comes from the route's
:class:`EditContext`, never from the message or the planner. One edit, one version.

- The first step runs on the head the request's ``If-Match`` named; every later step runs
  on the head the previous step left, checked again like an ``If-Match`` (so another client
  moving the head between two steps fails the next step with 409 ``head_moved``).
- The steps never use the request's Idempotency-Key claim: the act turn stores its whole
  reply under it at the end (see :mod:`gateway.workflows.act`).
- The first step that fails stops the plan: it is reported ``failed`` with its error
  envelope, the rest ``skipped``; the versions made before it stay.
- ``mask: "previous"`` is the mask of the latest segment step run so far (after a ``move``,
  the object's mask at its new place); ``"last"`` is the session's last mask as it was
  before the first step ran.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from lvi.contracts import seem
from lvi.contracts.gateway import (
    MAX_SEED,
    Action,
    ChatRequest,
    GenerateRequest,
    InpaintRequest,
    MaskInfo,
    MoveRequest,
    ProgressEvent,
    RemoveRequest,
    ReplaceRequest,
    SegmentRequest,
    Version,
)
from lvi.errors import LviError, Unprocessable
from lvi_client.errors import ErrorEnvelope

from ..idempotency import EditContext, Idempotency
from ..planner import (
    GenerateStep,
    InpaintStep,
    MoveStep,
    Plan,
    RemoveStep,
    ReplaceStep,
    SegmentStep,
    Step,
    place_relative,
)
from ..sessions import SessionStore
from .edits import EditService
from .generate import GenerateService
from .masks import MaskService
from .sessions import SessionService


def pick_instance(select: str) -> Callable[[list[seem.SegmentMask]], seem.SegmentMask]:
    """The mask a segment step keeps: the best one (``all``: the worker merged them), or the
    one instance leftmost / rightmost / topmost / bottommost / nearest the centre / largest /
    smallest by its bbox. An empty mask is a 422 ``empty_mask`` (nothing is stored)."""

    def centre_distance(m: seem.SegmentMask) -> float:
        x0, y0, x1, y1 = m.bbox
        w, h = m.mask.size
        return ((x0 + x1) / 2 - w / 2) ** 2 + ((y0 + y1) / 2 - h / 2) ** 2

    keys: dict[str, Callable[[seem.SegmentMask], float]] = {
        "left": lambda m: m.bbox[0],
        "right": lambda m: -m.bbox[2],
        "top": lambda m: m.bbox[1],
        "bottom": lambda m: -m.bbox[3],
        "center": centre_distance,
        "largest": lambda m: -m.area,
        "smallest": lambda m: m.area,
    }

    def pick(masks: list[seem.SegmentMask]) -> seem.SegmentMask:
        found = [m for m in masks if m.area > 0]
        if not found:
            raise Unprocessable(
                "The segmentation found nothing there (an empty mask): name the object "
                "differently, or click on it.",
                code="empty_mask",
                param="text",
            )
        key = keys.get(select)
        return min(found, key=key) if key is not None else found[0]

    return pick


@dataclass
class RunState:
    """Where a running plan is: the head, the context on it, the masks it may use, and
    what each step did."""

    principal: str
    sid: str
    head: int | None
    ctx: EditContext | None  # None: the head moved, make a context on it before the next step
    last_mask: str | None
    previous: str | None = None
    failed: bool = False
    actions: list[Action] = field(default_factory=list)


@dataclass(frozen=True)
class _Done:
    """A step's outcome (internal: becomes the step's :class:`Action`)."""

    summary: str
    version: int | None = None
    mask_id: str | None = None


TITLES = {
    "segment": "Segment",
    "remove": "Remove",
    "replace": "Replace",
    "move": "Move",
    "inpaint": "Add",
    "generate": "Generate",
    "undo": "Undo",
    "redo": "Redo",
}


def _build(model: type[BaseModel], **kw: Any) -> Any:
    """A workflow's request from a step's arguments; a value the route would refuse is the
    same 422 here (the step models allow a little more than some routes)."""
    try:
        return model(**{k: v for k, v in kw.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        raise Unprocessable(f"Invalid {param or 'argument'}: {first['msg']}", param=param) from None


class PlanExecutor:
    """Runs the steps of a plan through the gateway's workflow services."""

    def __init__(
        self,
        store: SessionStore,
        idempotency: Idempotency,
        sessions: SessionService,
        masks: MaskService,
        edits: EditService,
        generate: GenerateService,
    ) -> None:
        self.store = store
        self.idempotency = idempotency
        self.sessions = sessions
        self.masks = masks
        self.edits = edits
        self.generate = generate

    @staticmethod
    def start(ctx: EditContext, last_mask: str | None) -> RunState:
        """The state before the first step: the route's context, without its claim."""
        step_ctx = EditContext(ctx.principal, ctx.meta, ctx.base, None, ctx.stream, ctx._image)
        head = ctx.base.id if ctx.base else None
        return RunState(ctx.principal, ctx.sid, head, step_ctx, last_mask)

    async def run(
        self, state: RunState, plan: Plan, req: ChatRequest
    ) -> AsyncIterator[ProgressEvent | Action]:
        """Every step in order: its progress (``action`` = its index), then its
        :class:`Action`; after a failure the rest are ``skipped``."""
        for i, step in enumerate(plan.steps):
            args = step.model_dump(mode="json", exclude={"tool"})
            title = TITLES.get(step.tool, step.tool)
            if state.failed:
                action = Action(
                    index=i,
                    tool=step.tool,
                    args=args,
                    status="skipped",
                    summary=f"{title}: skipped (an earlier step failed).",
                )
            else:
                try:
                    done: _Done | None = None
                    async for ev in self._step(state, step, req):
                        if isinstance(ev, _Done):
                            done = ev
                        else:
                            yield ev.model_copy(update={"action": i})
                    assert done is not None
                    action = Action(
                        index=i,
                        tool=step.tool,
                        args=args,
                        status="done",
                        version=done.version,
                        mask_id=done.mask_id,
                        summary=done.summary,
                    )
                except LviError as e:
                    state.failed = True
                    action = Action(
                        index=i,
                        tool=step.tool,
                        args=args,
                        status="failed",
                        summary=f"{title} failed: {e.message}",
                        error=ErrorEnvelope.model_validate(e.envelope()),
                    )
            state.actions.append(action)
            yield action

    # -- one step ----------------------------------------------------------------------------
    async def _context(self, state: RunState, tool: str) -> EditContext:
        """The context on the current head (re-read after the previous step moved it)."""
        if state.ctx is None:
            ctx = await self.idempotency.begin(
                state.principal,
                state.sid,
                route=tool,
                body=None,
                if_match=f'"{state.head or 0}"',
                idempotency_key=None,
            )
            assert isinstance(ctx, EditContext)  # no key: never a replay
            state.ctx = ctx
        return state.ctx

    @staticmethod
    def _mask(state: RunState, ref: str) -> str:
        mask_id = state.previous if ref == "previous" else state.last_mask
        if mask_id is None:
            raise Unprocessable(
                "There is no mask to use: segment something first, or click on it.",
                code="no_mask",
                param="mask",
            )
        return mask_id

    @staticmethod
    def _seed(req: ChatRequest) -> int | None:
        return req.seed if req.seed is not None and req.seed <= MAX_SEED else None

    async def _edit(
        self, state: RunState, workflow: AsyncIterator[Any]
    ) -> AsyncIterator[ProgressEvent | Version]:
        """Relay a workflow's progress; its version moves the run's head."""
        async for ev in workflow:
            if isinstance(ev, Version):
                state.head, state.ctx = ev.id, None
            yield ev

    async def _step(
        self, state: RunState, step: Step, req: ChatRequest
    ) -> AsyncIterator[ProgressEvent | _Done]:
        if step.tool in ("undo", "redo"):
            v = await self.sessions.move_head(
                state.principal, state.sid, step.tool, f'"{state.head or 0}"'
            )
            state.head, state.ctx = v.id, None
            verb = "Undid" if step.tool == "undo" else "Redid"
            yield _Done(f"{verb} one edit: the head is version {v.id}.", version=v.id)
            return
        ctx = await self._context(state, step.tool)
        version: Version | None = None
        mask_id: str | None = None
        if isinstance(step, SegmentStep):
            seg = _build(
                SegmentRequest,
                text=step.text,
                points=step.points,
                labels=step.labels,
                boxes=step.boxes,
                stroke=req.stroke if step.stroke else None,
                merge=step.select == "all",
            )
            async for ev in self.masks.segment(ctx, seg, pick=pick_instance(step.select)):
                if isinstance(ev, MaskInfo):
                    state.previous = mask_id = ev.mask_id
                elif isinstance(ev, ProgressEvent):
                    yield ev
            what = f"'{step.text}'" if step.text else "what you pointed at"
            if step.select != "all":
                what = f"{what} ({step.select})"
            yield _Done(f"Segmented {what} (mask {mask_id}).", mask_id=mask_id)
            return
        if isinstance(step, RemoveStep | ReplaceStep | MoveStep):
            mask_id = self._mask(state, step.mask)
        workflow: AsyncIterator[Any]
        if isinstance(step, RemoveStep):
            workflow = self.edits.remove(
                ctx, _build(RemoveRequest, mask_id=mask_id, dilate=step.dilate)
            )
            summary = "Removed it"
        elif isinstance(step, ReplaceStep):
            workflow = self.edits.replace(
                ctx,
                _build(ReplaceRequest, mask_id=mask_id, phrase=step.phrase, seed=self._seed(req)),
            )
            summary = f"Replaced it with '{step.phrase}'"
        elif isinstance(step, MoveStep):
            workflow = self.edits.move(
                ctx, _build(MoveRequest, mask_id=mask_id, dx=step.dx, dy=step.dy)
            )
            summary = f"Moved it by ({step.dx}, {step.dy}) px"
        elif isinstance(step, InpaintStep):
            boxes = [list(b) for b in step.boxes]
            if step.anchor is not None:
                anchor = self._mask(state, step.anchor)
                rec, _ = await self.store.mask(state.sid, anchor)
                if rec.bbox is None or ctx.base is None:
                    raise Unprocessable("The anchor mask is empty.", code="empty_mask")
                relation = step.relation or "next_to"
                bbox = [float(v) for v in rec.bbox]
                boxes = [place_relative(relation, bbox, ctx.base.width, ctx.base.height)]
            workflow = self.edits.inpaint(
                ctx,
                _build(InpaintRequest, boxes=boxes, phrases=step.phrases, seed=self._seed(req)),
            )
            summary = f"Added {', '.join(repr(p) for p in step.phrases)}"
        elif isinstance(step, GenerateStep):
            workflow = self.generate.generate(
                ctx,
                _build(
                    GenerateRequest,
                    prompt=step.prompt,
                    phrases=step.phrases,
                    boxes=step.boxes,
                    seed=self._seed(req),
                ),
            )
            summary = f"Generated '{step.prompt}'"
        else:  # pragma: no cover - every tool is handled above
            raise Unprocessable(f"Unknown step {step.tool!r}.")
        async for ev in self._edit(state, workflow):
            if isinstance(ev, Version):
                version = ev
            elif isinstance(ev, ProgressEvent):
                yield ev
        assert version is not None
        if isinstance(step, MoveStep) and version.mask_id:
            # The object is now somewhere else: "it" in a later step is its new mask.
            state.previous = version.mask_id
        yield _Done(f"{summary} (version {version.id}).", version=version.id, mask_id=mask_id)
