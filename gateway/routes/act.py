"""``POST /v1/sessions/{id}/plan``: what chat ``act`` would do with a message, as a dry run.

(``act`` itself is the chat route's flag: ``POST /v1/sessions/{id}/chat {"act": true}``.)
"""

from __future__ import annotations

from fastapi import APIRouter, Path

from lvi.contracts.gateway import PlanReply, PlanRequest

from ..deps import ActDep, PrincipalDep
from .common import ERRORS
from .sessions import session_id


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=ERRORS)

    @router.post(
        "/{sid}/plan",
        response_model=PlanReply,
        summary="Plan a chat message's edits without running them (changes nothing).",
    )
    async def plan(
        body: PlanRequest, who: PrincipalDep, acts: ActDep, sid: str = Path(...)
    ) -> PlanReply:
        return await acts.dry_run(who, session_id(sid), body)

    return router
