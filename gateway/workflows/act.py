"""Chat that acts (issue 15): ``POST .../chat {"act": true}`` and the dry run ``POST .../plan``.

One act turn: read what the planner may know about the caller's session (head size, last
mask, the visual prompts sent with the message), plan, run the plan with
:class:`~gateway.workflows.executor.PlanExecutor` (each edit a new version), then LLaVA
answers about the final image with the history, told what was done. The reply (and its
Idempotency-Key result) carries every step as an :class:`Action`.

A plan that asks back (a missing part, no image yet) runs nothing and calls no model: the
question is the reply. The session is always the route's: nothing in the message or the
plan can name another one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from lvi.contracts.gateway import (
    Action,
    ChatDelta,
    ChatRequest,
    PlannedAction,
    PlanReply,
    PlanRequest,
)

from ..idempotency import EditContext
from ..planner import Plan, PlanContext, Planner
from ..sessions import MaskRecord, MessageRecord, SessionStore, VersionRecord
from ..sessions.errors import redis_guard
from .base import Event
from .chat import ChatService
from .executor import PlanExecutor


async def latest_mask(store: SessionStore, sid: str, head: VersionRecord | None) -> str | None:
    """The session's last mask that fits the head image (what "it/this/that" means when the
    message comes with no click, box or stroke)."""
    if head is None:
        return None
    with redis_guard():
        raw = await store.redis.hvals(store.keys(sid).masks)
    fits = [
        rec
        for rec in (MaskRecord.model_validate_json(r) for r in raw)
        if (rec.width, rec.height) == (head.width, head.height)
    ]
    return max(fits, key=lambda r: r.created_at).mask_id if fits else None


def plan_reply(plan: Plan) -> PlanReply:
    return PlanReply(
        actions=[PlannedAction.model_validate(a) for a in plan.actions()],
        clarification=plan.clarification,
        planner=plan.planner,
        fallback_reason=plan.fallback_reason,
    )


def told(actions: list[Action]) -> str:
    """The note LLaVA gets with the user's message: what was just done to the image."""
    lines = [a.summary for a in actions if a.status != "skipped"]
    failed = any(a.status == "failed" for a in actions)
    tail = (
        " The failed step changed nothing; tell the user what failed."
        if failed
        else " Answer about the image as it is now."
    )
    return "(You have just edited the image as the user asked: " + " ".join(lines) + tail + ")"


class ActService:
    """Plans a chat message, runs the plan on the caller's session, and answers."""

    def __init__(
        self,
        store: SessionStore,
        planner: Planner,
        executor: PlanExecutor,
        chat: ChatService,
    ) -> None:
        self.store = store
        self.planner = planner
        self.executor = executor
        self.chat_service = chat

    async def _plan(
        self, sid: str, head: VersionRecord | None, req: ChatRequest | PlanRequest
    ) -> tuple[Plan, str | None]:
        last = req.mask_id or await latest_mask(self.store, sid, head)
        context = PlanContext(
            width=head.width if head else None,
            height=head.height if head else None,
            has_mask=last is not None,
            points=[list(p) for p in req.points],
            labels=list(req.labels) if req.labels is not None else None,
            boxes=[list(b) for b in req.boxes],
            stroke=bool(req.stroke),
        )
        return await self.planner.plan(req.message, context), last

    async def dry_run(self, principal: str, sid: str, req: PlanRequest) -> PlanReply:
        """``POST .../plan``: what an act turn would do; changes nothing."""
        meta = await self.store.meta(sid, principal)
        head = await self.store.version(sid, meta.head) if meta.head else None
        plan, _ = await self._plan(sid, head, req)
        return plan_reply(plan)

    async def chat(
        self, ctx: EditContext, req: ChatRequest
    ) -> AsyncIterator[Event | PlanReply | Action]:
        """An act turn: ``PlanReply``, each step's progress and ``Action``, then the chat
        turn's deltas and its ``ChatReply`` (with ``actions``)."""
        plan, last = await self._plan(ctx.sid, ctx.base, req)
        yield plan_reply(plan)
        extra: dict[str, Any] = {
            "planner": plan.planner,
            "fallback_reason": plan.fallback_reason,
        }
        if plan.clarification is not None:
            async for ev in self._ask_back(ctx, req, plan.clarification, extra):
                yield ev
            return
        if not plan.steps:  # a question or a remark: just chat
            async for ev in self.chat_service.chat(ctx, req, extra=extra):
                yield ev
            return
        state = PlanExecutor.start(ctx, last)
        async for item in self.executor.run(state, plan, req):
            yield item
        # The answer is about the head as it is now (whoever moved it last), and stores the
        # turn under the request's Idempotency-Key.
        meta = await self.store.meta(ctx.sid, ctx.principal)
        head = await self.store.version(ctx.sid, meta.head) if meta.head else None
        final = EditContext(ctx.principal, meta, head, ctx.claim, ctx.stream)
        if head is not None and ctx.base is not None and head.id == ctx.base.id:
            final._image = ctx._image
        ctx.claim = None
        extra["actions"] = state.actions
        try:
            async for ev in self.chat_service.chat(
                final, req, told=told(state.actions), extra=extra
            ):
                yield ev
        finally:
            ctx.claim = final.claim  # not stored: the route gives it back

    async def _ask_back(
        self, ctx: EditContext, req: ChatRequest, question: str, extra: dict[str, Any]
    ) -> AsyncIterator[Event]:
        """The plan asks back: the question is the reply (no model call, nothing edited)."""
        version = ctx.base.id if ctx.base else None
        now = time.time()
        user = MessageRecord(role="user", content=req.message, version=version, created_at=now)
        assistant = MessageRecord(
            role="assistant", content=question, version=version, created_at=time.time()
        )
        if req.stream:
            yield ChatDelta(content=question)
        yield await self.chat_service.record_turn(
            ctx, user, assistant, finish_reason="stop", clarification=question, **extra
        )
