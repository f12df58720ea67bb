"""FastAPI dependencies of the routes, as ``Annotated`` aliases (``who: PrincipalDep``).

Everything comes from ``request.app.state``, where ``create_app`` put it: nothing global,
so two apps in one process (tests) never share a service.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from lvi.errors import LviError

from .clients import WorkerClients
from .idempotency import Idempotency
from .planner import Planner
from .sessions import SessionStore
from .settings import GatewaySettings
from .signin import Identity, SignIn
from .workflows import (
    ActService,
    ChatService,
    EditService,
    GenerateService,
    MaskService,
    SessionService,
    Workflows,
)


async def get_identity(request: Request) -> Identity:
    """Authenticate (401) and rate-limit (429) the caller: an API key or a sign-in token."""
    state = request.app.state
    throttle = getattr(state, "auth_throttle", None)
    address = request.client.host if request.client else "?"
    if throttle is not None:
        throttle.check(address)
    try:
        who: Identity = await state.authenticator.identify(request.headers.get("authorization"))
    except LviError as e:
        if throttle is not None and e.status == 401:
            throttle.failed(address)
        raise
    try:
        await state.ratelimiter.check(who.principal)  # each signed-in user: its own bucket
    except LviError as e:
        if e.status == 429:
            state.metrics.rate_limited.inc()
        raise
    return who


async def get_principal(request: Request) -> str:
    """The authenticated, rate-limited caller's principal (see :func:`get_identity`)."""
    return (await get_identity(request)).principal


async def get_signin(request: Request) -> SignIn:
    signin: SignIn = request.app.state.signin
    return signin


# The getters are async on purpose: FastAPI runs a plain ``def`` dependency in a thread.
def _workflows(request: Request) -> Workflows:
    wf: Workflows = request.app.state.workflows
    return wf


async def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


async def get_store(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.store
    return store


async def get_clients(request: Request) -> WorkerClients:
    clients: WorkerClients = request.app.state.clients
    return clients


async def get_idempotency(request: Request) -> Idempotency:
    return _workflows(request).idempotency


async def get_sessions(request: Request) -> SessionService:
    return _workflows(request).sessions


async def get_masks(request: Request) -> MaskService:
    return _workflows(request).masks


async def get_edits(request: Request) -> EditService:
    return _workflows(request).edits


async def get_generate(request: Request) -> GenerateService:
    return _workflows(request).generate


async def get_chat(request: Request) -> ChatService:
    return _workflows(request).chat


async def get_planner(request: Request) -> Planner:
    return _workflows(request).planner


async def get_act(request: Request) -> ActService:
    return _workflows(request).act


PrincipalDep = Annotated[str, Depends(get_principal)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
SignInDep = Annotated[SignIn, Depends(get_signin)]
SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
StoreDep = Annotated[SessionStore, Depends(get_store)]
ClientsDep = Annotated[WorkerClients, Depends(get_clients)]
IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
SessionsDep = Annotated[SessionService, Depends(get_sessions)]
MasksDep = Annotated[MaskService, Depends(get_masks)]
EditsDep = Annotated[EditService, Depends(get_edits)]
GenerateDep = Annotated[GenerateService, Depends(get_generate)]
ChatDep = Annotated[ChatService, Depends(get_chat)]
PlannerDep = Annotated[Planner, Depends(get_planner)]
ActDep = Annotated[ActService, Depends(get_act)]

#: Request headers every changing route accepts (give them ``= None``).
IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
IfMatchHeader = Annotated[str | None, Header(alias="If-Match", max_length=64)]
