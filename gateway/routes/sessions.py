"""Session routes: create/read/delete, images, undo/redo/checkout, masks, chat and edits."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from lvi.contracts.gateway import (
    ChatRequest,
    Checkout,
    GenerateRequest,
    InpaintRequest,
    MaskInfo,
    MoveRequest,
    RemoveRequest,
    ReplaceRequest,
    SegmentRequest,
    SegmentResult,
    Session,
    SessionCreate,
    Version,
)
from lvi.errors import NotFound, Unprocessable, UnsupportedMediaType
from lvi.sse import wants_stream

from ..deps import (
    ActDep,
    ChatDep,
    IdempotencyDep,
    IdempotencyKeyHeader,
    IfMatchHeader,
    MasksDep,
    PrincipalDep,
    SessionsDep,
    get_edits,
    get_generate,
)
from ..idempotency import Replay
from .common import ERRORS, respond

_SID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
RAW_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "application/octet-stream")


def session_id(sid: str = Path(..., description="Session id.")) -> str:
    # Anything that cannot be an id is simply not found (and never reaches a Redis key).
    if not _SID.match(sid):
        raise NotFound(f"Session {sid[:64]} not found.", code="session_not_found")
    return sid


async def read_upload(request: Request) -> tuple[bytes, str | None]:
    """The uploaded bytes: multipart field ``file``, or the raw body with an image type."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=8)
        item = form.get("file")
        if not isinstance(item, UploadFile):
            raise Unprocessable("Send the image in the multipart field 'file'.", param="file")
        data = await item.read()
        await form.close()
        return data, item.filename
    if ctype in RAW_IMAGE_TYPES or ctype == "":
        return await request.body(), None
    raise UnsupportedMediaType(
        f"Content-Type {ctype} is not accepted: send multipart/form-data with a 'file' field, "
        "or the image bytes as image/png, image/jpeg or image/webp.",
        code="unsupported_content_type",
    )


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=ERRORS)

    @router.post("", status_code=201, response_model=Session, summary="Create a session.")
    async def create_session(
        who: PrincipalDep,
        sessions: SessionsDep,
        body: SessionCreate | None = None,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Session:
        return await sessions.create_session(who, body.title if body else None, idempotency_key)

    @router.get("/{sid}", response_model=Session, summary="A session: versions, head, masks, chat.")
    async def get_session(
        who: PrincipalDep, sessions: SessionsDep, sid: str = Path(...)
    ) -> JSONResponse:
        s = await sessions.session(who, session_id(sid))
        return JSONResponse(s.model_dump(mode="json"), headers={"ETag": f'"{s.head or 0}"'})

    @router.delete("/{sid}", status_code=204, summary="Delete a session and all it holds.")
    async def delete_session(
        who: PrincipalDep, sessions: SessionsDep, sid: str = Path(...)
    ) -> Response:
        await sessions.delete_session(who, session_id(sid))
        return Response(status_code=204)

    @router.delete(
        "/{sid}/messages", status_code=204, summary="Forget the chat history (images stay)."
    )
    async def clear_messages(
        who: PrincipalDep, sessions: SessionsDep, sid: str = Path(...)
    ) -> Response:
        await sessions.clear_messages(who, session_id(sid))
        return Response(status_code=204)

    @router.post(
        "/{sid}/images",
        status_code=201,
        response_model=Version,
        summary="Upload an image (multipart 'file' or raw body) as a new version.",
    )
    async def upload_image(
        request: Request,
        who: PrincipalDep,
        sessions: SessionsDep,
        idem: IdempotencyDep,
        sid: str = Path(...),
        idempotency_key: IdempotencyKeyHeader = None,
        if_match: IfMatchHeader = None,
    ) -> Response:
        sid = session_id(sid)
        data, filename = await read_upload(request)
        ctx = await idem.begin(
            who, sid, route="upload", body=data, if_match=if_match, idempotency_key=idempotency_key
        )
        steps = None if isinstance(ctx, Replay) else sessions.upload(ctx, data, filename)
        return await respond(request, idem, "upload", ctx, steps, stream=False)

    @router.get(
        "/{sid}/images/{ref}",
        summary="The image bytes of a version (a number or 'head').",
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}},
    )
    async def get_image(
        request: Request,
        who: PrincipalDep,
        sessions: SessionsDep,
        sid: str = Path(...),
        ref: str = Path(..., description="A version number or 'head'."),
    ) -> Response:
        rec, data = await sessions.image(who, session_id(sid), ref)
        etag = f'"{rec.image_hash}"'
        headers = {
            "ETag": etag,
            "X-Version": str(rec.id),
            # A numbered version never changes; 'head' may move.
            "Cache-Control": "private, max-age=31536000, immutable"
            if ref != "head"
            else "private, no-cache",
        }
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=rec.content_type, headers=headers)

    async def _move(
        who: str,
        sid: str,
        sessions: SessionsDep,
        action: str,
        if_match: str | None,
        idempotency_key: str | None,
        target: int | None = None,
    ) -> JSONResponse:
        v = await sessions.move_head(
            who, session_id(sid), action, if_match, target, idempotency_key
        )
        return JSONResponse(v.model_dump(mode="json"), headers={"ETag": f'"{v.id}"'})

    @router.post("/{sid}/undo", response_model=Version, summary="Move the head to its parent.")
    async def undo(
        who: PrincipalDep,
        sessions: SessionsDep,
        sid: str = Path(...),
        if_match: IfMatchHeader = None,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> JSONResponse:
        return await _move(who, sid, sessions, "undo", if_match, idempotency_key)

    @router.post(
        "/{sid}/redo", response_model=Version, summary="Move the head back to where undo left."
    )
    async def redo(
        who: PrincipalDep,
        sessions: SessionsDep,
        sid: str = Path(...),
        if_match: IfMatchHeader = None,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> JSONResponse:
        return await _move(who, sid, sessions, "redo", if_match, idempotency_key)

    @router.post("/{sid}/checkout", response_model=Version, summary="Move the head to any version.")
    async def checkout(
        body: Checkout,
        who: PrincipalDep,
        sessions: SessionsDep,
        sid: str = Path(...),
        if_match: IfMatchHeader = None,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> JSONResponse:
        return await _move(who, sid, sessions, "checkout", if_match, idempotency_key, body.version)

    @router.post(
        "/{sid}/masks",
        status_code=201,
        response_model=MaskInfo,
        summary="Upload a mask the user painted (single-channel PNG, white = inside).",
    )
    async def upload_mask(
        request: Request,
        who: PrincipalDep,
        masks: MasksDep,
        idem: IdempotencyDep,
        sid: str = Path(...),
        version: int | None = Query(
            None, ge=1, description="The version it is for (default: head)."
        ),
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response:
        sid = session_id(sid)
        data, _ = await read_upload(request)
        ctx = await idem.begin(
            who,
            sid,
            route=f"masks?{version}",
            body=data,
            if_match=None,
            idempotency_key=idempotency_key,
        )
        steps = None if isinstance(ctx, Replay) else masks.upload_mask(ctx, data, version)
        return await respond(request, idem, "upload_mask", ctx, steps, stream=False)

    @router.get(
        "/{sid}/masks/{mask_id}",
        response_class=Response,
        summary="A mask as a single-channel PNG.",
        responses={200: {"content": {"image/png": {}}}},
    )
    async def get_mask(
        who: PrincipalDep,
        sessions: SessionsDep,
        sid: str = Path(...),
        mask_id: str = Path(..., max_length=64),
    ) -> Response:
        data = await sessions.mask_png(who, session_id(sid), mask_id)
        return Response(
            data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
        )

    @router.post(
        "/{sid}/segment",
        status_code=201,
        response_model=SegmentResult,
        summary="Segment the head image.",
    )
    async def segment(
        body: SegmentRequest,
        request: Request,
        who: PrincipalDep,
        masks: MasksDep,
        idem: IdempotencyDep,
        sid: str = Path(...),
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response:
        ctx = await idem.begin(
            who,
            session_id(sid),
            route="segment",
            body=body,
            if_match=None,
            idempotency_key=idempotency_key,
        )
        steps = None if isinstance(ctx, Replay) else masks.segment(ctx, body)
        return await respond(request, idem, "segment", ctx, steps, stream=False)

    @router.post(
        "/{sid}/chat",
        response_model=None,
        summary="Chat about the head image with the session's history (SSE when stream); "
        "with act, the message also edits the image.",
    )
    async def chat(
        body: ChatRequest,
        request: Request,
        who: PrincipalDep,
        chats: ChatDep,
        acts: ActDep,
        idem: IdempotencyDep,
        sid: str = Path(...),
        idempotency_key: IdempotencyKeyHeader = None,
        if_match: IfMatchHeader = None,
    ) -> Response:
        stream = body.stream or wants_stream(request)
        body = body.model_copy(update={"stream": stream})
        route = "act" if body.act else "chat"  # act: If-Match holds for the first step
        ctx = await idem.begin(
            who,
            session_id(sid),
            route=route,
            body=body,
            if_match=if_match if body.act else None,
            idempotency_key=idempotency_key,
            stream=stream,
        )
        steps = None
        if not isinstance(ctx, Replay):
            steps = acts.chat(ctx, body) if body.act else chats.chat(ctx, body)
        return await respond(request, idem, route, ctx, steps, status=200, stream=stream)

    def edit_route(
        name: str, model: type[Any], summary: str, service: Callable[[Request], Any]
    ) -> None:
        """``POST /{sid}/<name>``: the method ``name`` of the service ``service`` returns."""

        async def edit(
            request: Request,
            body: Any,
            who: PrincipalDep,
            workflows: Any,
            idem: IdempotencyDep,
            sid: str = Path(...),
            idempotency_key: IdempotencyKeyHeader = None,
            if_match: IfMatchHeader = None,
        ) -> Response:
            # A preview answers the image itself: never a stream, never a stored result.
            preview = bool(getattr(body, "preview", False))
            stream = wants_stream(request) and not preview
            ctx = await idem.begin(
                who,
                session_id(sid),
                route=name,
                body=body,
                if_match=if_match,
                idempotency_key=idempotency_key,
                stream=stream,
            )
            steps = None if isinstance(ctx, Replay) else getattr(workflows, name)(ctx, body)
            return await respond(request, idem, name, ctx, steps, stream=stream)

        # Set after definition: FastAPI reads the body model and the service from these.
        edit.__annotations__["body"] = model
        edit.__annotations__["workflows"] = Annotated[Any, Depends(service)]
        router.add_api_route(
            f"/{{sid}}/{name}",
            edit,
            methods=["POST"],
            status_code=201,
            response_model=Version,
            summary=summary,
            name=name,
            # remove's preview answers the filled image itself (nothing committed).
            responses=(
                {200: {"description": "preview", "content": {"image/png": {}}}}
                if name == "remove"
                else None
            ),
        )

    edit_route("remove", RemoveRequest, "Remove an object: fill its (dilated) mask.", get_edits)
    edit_route(
        "move", MoveRequest, "Move an object by (dx, dy), or regenerate it there.", get_edits
    )
    edit_route(
        "replace", ReplaceRequest, "Replace an object with a new phrase (GLIGEN).", get_edits
    )
    edit_route("inpaint", InpaintRequest, "Add new objects in boxes (GLIGEN).", get_edits)
    edit_route(
        "generate",
        GenerateRequest,
        "Generate a new image from a caption (GLIGEN).",
        get_generate,
    )
    return router
