"""Session and image-history handlers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr

from frontend.handlers.errors import (
    Gateway,
    fail,
    random_banner,
    user_errors,
)
from frontend.handlers.inputs import (
    DEFAULT_GEN_SIZE,
    chat_history,
    native_size,
    version_caption,
)
from frontend.handlers.state import HeadView, ImageFiles, Loaded, UiState, browser_value
from lvi.contracts.gateway import (
    Session,
    Version,
)
from lvi_client import (
    APIError,
    ConflictError,
    NotFoundError,
)

HEAD_MOVED = "head_moved"  # the gateway's 409 code for an If-Match on an old head
STALE_TAB = (
    "This session changed in another tab or window: it now shows the latest version. "
    "Check it, then try your edit again."
)


def session_title() -> str:
    """A new session's title until the user renames it: when it began (UTC), so the
    session picker tells sessions apart."""
    return time.strftime("Session of %d %b, %H:%M:%S UTC", time.gmtime())


# -- the controller --------------------------------------------------------------------------------
class SessionHandlers:
    """Sessions and image history (new/upload/undo/redo/checkout/refresh); the base every
    workflow group builds on. Stateless itself: the per-tab state comes in as a
    :class:`UiState` and goes out as a new one."""

    def __init__(
        self,
        client: Gateway,
        files: ImageFiles | None = None,
        *,
        sign_in: bool = False,
        forward_address: bool = True,
    ) -> None:
        """``client`` is the base client: its connection pool serves every user, each with
        their own credentials (:meth:`gateway`). With ``sign_in`` a tab without a signed-in
        user can do nothing; without it (the explicit single-user mode) the base client's
        own key acts for everyone who reaches the UI."""
        self.client = client
        self.files = files or ImageFiles()
        self.sign_in = sign_in
        self.forward_address = forward_address

    def forwarded(self, address: str | None) -> dict[str, str] | None:
        """The visitor's address for the gateway's per-address throttles (which trust it only
        from proxies it was told to trust)."""
        return {"X-Forwarded-For": address} if address and self.forward_address else None

    def gateway(self, state: UiState) -> Gateway:
        """The client acting for this tab's user."""
        if state.token:
            return self.client.with_api_key(state.token, headers=self.forwarded(state.address))
        if self.sign_in:
            raise fail("Sign in first.", title="Not signed in")
        return self.client

    # sessions
    async def info_banner(self, state: UiState | None = None) -> str | None:
        """The random-weights banner (:func:`random_banner`), or None (also None while the
        gateway is starting)."""
        return (await self.page_info(state or UiState()))[0]

    async def page_info(self, state: UiState) -> tuple[str | None, int]:
        """The banner (as :meth:`info_banner`) and the generation model's native size, from
        one ``/v1/info`` call; (None, 512) while the gateway is starting."""
        try:
            info = await self.gateway(state).info()
        except APIError:
            return None, DEFAULT_GEN_SIZE
        return random_banner(info), native_size(info)

    async def open(self, stored: dict[str, Any] | None, state: UiState | None = None) -> Loaded:
        """A page load: resume the session stored in this browser, else start a new one
        (for the user signed in to ``state``)."""
        state = state or UiState()
        client = self.gateway(state)
        banner, gen_size = await self.page_info(state)
        session: Session | None = None
        sid = (stored or {}).get("session_id")
        with user_errors():
            if sid:
                try:
                    session = await client.get_session(str(sid))
                except NotFoundError:
                    session = None  # expired or deleted: start afresh
            if session is None:
                session = await client.create_session(title=session_title())
            state, head = await self._view(replace(state, session_id=session.id), session)
        return Loaded(state, head, chat_history(session), banner, browser_value(state), gen_size)

    async def new_session(self, state: UiState) -> Loaded:
        """Start over: a fresh gateway session (the old one stays until it expires)."""
        return await self.open(
            None, UiState(token=state.token, principal=state.principal, address=state.address)
        )

    async def ensure_session(self, state: UiState) -> UiState:
        """API callers (gradio_client) never ran the page load: give them a session."""
        if state.session_id:
            return state
        with user_errors():
            session = await self.gateway(state).create_session(title="LLaVA-Interactive API")
        return replace(state, session_id=session.id)

    async def _view(
        self, state: UiState, session: Session | None = None
    ) -> tuple[UiState, HeadView]:
        """Re-read the session and show its head; the selected object and clicks are reset,
        since they belong to the previous head."""
        assert state.session_id
        if session is None:
            session = await self.gateway(state).get_session(state.session_id)
        head = next((v for v in session.versions if v.id == session.head), None)
        paths = await self._version_paths(self.gateway(state), session)
        gallery = [(str(paths[v.id]), version_caption(v, session.head)) for v in session.versions]
        selected = next((i for i, v in enumerate(session.versions) if v.id == session.head), None)
        if head is None:
            view = HeadView(
                None,
                0,
                0,
                gallery,
                None,
                "No image yet: upload one or pick an example.",
                False,
                False,
            )
            return replace(
                state, head=None, head_path=None, width=0, height=0, mask=None, points=[], labels=[]
            ), view
        path = str(paths[head.id])
        seed = f" · seed {head.seed}" if head.seed is not None else ""
        summary = (
            f"**v{head.id}** of {len(session.versions)} · {head.operation} · "
            f"{head.width}x{head.height}{seed}"
        )
        download = self.files.named(paths[head.id], f"lvi-v{head.id}{paths[head.id].suffix}")
        view = HeadView(
            path,
            head.width,
            head.height,
            gallery,
            selected,
            summary,
            session.can_undo,
            session.can_redo,
            str(download),
        )
        new_state = UiState(
            session_id=state.session_id,
            token=state.token,
            principal=state.principal,
            address=state.address,
            head=head.id,
            head_path=path,
            width=head.width,
            height=head.height,
        )
        return new_state, view

    async def _version_paths(self, client: Gateway, session: Session) -> dict[int, Path]:
        sem = asyncio.Semaphore(4)  # a long history must not open dozens of connections

        async def one(v: Version) -> tuple[int, Path]:
            async with sem:
                return v.id, await self.files.version(client, session.id, v)

        return dict(await asyncio.gather(*(one(v) for v in session.versions)))

    async def refresh(self, state: UiState) -> tuple[UiState, HeadView]:
        state = await self.ensure_session(state)
        with user_errors():
            return await self._view(state)

    # image history
    async def upload(self, state: UiState, path: str | None) -> tuple[UiState, HeadView]:
        if not path:
            raise fail("Choose an image file to upload.")
        state = await self.ensure_session(state)
        assert state.session_id
        with user_errors():
            await self.gateway(state).upload_image(state.session_id, Path(path))
            return await self._view(state)

    async def _move_head(
        self, state: UiState, call: Callable[[str], Awaitable[object]]
    ) -> tuple[UiState, HeadView]:
        """Undo, redo or checkout: ``call(session_id)``, then show the new head."""
        state = await self.ensure_session(state)
        assert state.session_id
        return await self._apply(state, call(state.session_id))

    async def undo(self, state: UiState) -> tuple[UiState, HeadView]:
        return await self._move_head(state, self.gateway(state).undo)

    async def redo(self, state: UiState) -> tuple[UiState, HeadView]:
        return await self._move_head(state, self.gateway(state).redo)

    async def checkout(self, state: UiState, version: int) -> tuple[UiState, HeadView]:
        return await self._move_head(
            state, lambda sid: self.gateway(state).checkout(sid, int(version))
        )

    async def checkout_index(self, state: UiState, index: int) -> tuple[UiState, HeadView]:
        """A click on the history strip: its n-th thumbnail is the n-th version."""
        state = await self.ensure_session(state)
        assert state.session_id
        with user_errors():
            session = await self.gateway(state).get_session(state.session_id)
        if not 0 <= index < len(session.versions):
            raise fail("That version is no longer in the history.")
        return await self.checkout(state, session.versions[index].id)

    async def _apply(self, state: UiState, call: Awaitable[object]) -> tuple[UiState, HeadView]:
        """The one path every edit takes: await the gateway call (its failure becomes a
        ``gr.Error``), then show the new head."""
        with user_errors():
            try:
                await call
            except ConflictError as exc:
                if exc.code != HEAD_MOVED:
                    raise
                # The edit was made on a head another tab (or client) has since moved: show
                # the session as it is now, not an error; the user redoes it on that head.
                gr.Warning(STALE_TAB, title="Updated")
            return await self._view(state)

    # guards
    def _need_image(self, state: UiState) -> None:
        if not state.session_id or state.head is None:
            raise fail("Upload an image (or pick an example) first.")

    def _need_object(self, state: UiState) -> dict[str, Any]:
        self._need_image(state)
        if not state.mask:
            raise fail("Select an object first: segment it by box, click, stroke or text.")
        return state.mask
