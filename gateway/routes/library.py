"""The caller's sessions as a library: ``GET /v1/sessions`` (list), ``PATCH /v1/sessions/{id}``
(rename) and ``GET /v1/sessions/{id}/export`` (a zip). Create/read/delete are in sessions.py."""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse

from lvi.contracts.gateway import SessionPage, SessionSummary, SessionUpdate

from ..deps import PrincipalDep
from ..workflows import SessionExporter, SessionLibrary
from ..workflows.export import iter_file
from ..workflows.library import MAX_PAGE
from .common import ERRORS
from .sessions import session_id


async def get_library(request: Request) -> SessionLibrary:
    lib: SessionLibrary = request.app.state.workflows.library
    return lib


async def get_exporter(request: Request) -> SessionExporter:
    exp: SessionExporter = request.app.state.workflows.exporter
    return exp


LibraryDep = Annotated[SessionLibrary, Depends(get_library)]
ExporterDep = Annotated[SessionExporter, Depends(get_exporter)]


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=ERRORS)

    @router.get(
        "",
        response_model=SessionPage,
        summary="The caller's sessions, most recently changed first (paged).",
    )
    async def list_sessions(
        who: PrincipalDep,
        library: LibraryDep,
        limit: int = Query(20, ge=1, le=MAX_PAGE, description="Sessions per page."),
        cursor: str | None = Query(
            None, max_length=32, description="next_cursor of the previous page."
        ),
    ) -> SessionPage:
        return await library.page(who, cursor, limit)

    @router.patch("/{sid}", response_model=SessionSummary, summary="Rename a session.")
    async def rename_session(
        body: SessionUpdate, who: PrincipalDep, library: LibraryDep, sid: str = Path(...)
    ) -> SessionSummary:
        return await library.rename(who, session_id(sid), body.title)

    @router.get(
        "/{sid}/export",
        response_class=StreamingResponse,
        summary="The whole session as a zip: images, masks, chat (JSON and Markdown).",
        responses={200: {"content": {"application/zip": {}}}},
    )
    async def export_session(
        who: PrincipalDep, exporter: ExporterDep, sid: str = Path(...)
    ) -> StreamingResponse:
        sid = session_id(sid)
        f = await exporter.export(who, sid)
        size = f.seek(0, os.SEEK_END)
        f.seek(0)
        return StreamingResponse(
            iter_file(f),
            media_type="application/zip",
            headers={
                "Content-Disposition": f'attachment; filename="session-{sid}.zip"',
                "Content-Length": str(size),
                "Cache-Control": "private, no-store",
            },
        )

    return router
