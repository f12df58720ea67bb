"""Sign-in routes (``/v1/auth``): login, token exchange, logout, whoami (logic: gateway.signin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from lvi.contracts.gateway import AuthToken, LoginRequest, TokenRequest, WhoAmI

from ..deps import IdentityDep, SignInDep
from .common import ERRORS

_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"description": "Error envelope", "content": {"application/json": {}}},
    507: {"description": "Error envelope", "content": {"application/json": {}}},
}


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1/auth", tags=["sign-in"])

    @router.post(
        "/login",
        response_model=AuthToken,
        summary="Username and password -> a sign-in token (no API key needed). Wrong either: "
        "401 invalid_credentials; failures count per client address (429 auth_throttled).",
        responses=_ERRORS,
    )
    async def login(body: LoginRequest, request: Request, signin: SignInDep) -> AuthToken:
        address = request.client.host if request.client else "?"
        return await signin.login(body, address)

    @router.post(
        "/token",
        response_model=AuthToken,
        summary="Exchange the API key of this request for a sign-in token (method api_key). "
        "A token or anonymous caller: 403 api_key_required.",
        responses=_ERRORS,
    )
    async def token(
        who: IdentityDep, signin: SignInDep, body: TokenRequest | None = None
    ) -> AuthToken:
        return await signin.exchange(who, body or TokenRequest())

    @router.post(
        "/logout",
        status_code=204,
        summary="Revoke the sign-in token of this request (204). An API key: 400 not_a_token.",
        responses=_ERRORS,
    )
    async def logout(who: IdentityDep, signin: SignInDep) -> Response:
        await signin.logout(who)
        return Response(status_code=204)

    @router.get(
        "/whoami",
        response_model=WhoAmI,
        summary="The principal of the presented credentials and how they authenticated.",
        responses=_ERRORS,
    )
    async def whoami(who: IdentityDep, signin: SignInDep) -> WhoAmI:
        return signin.whoami(who)

    return router
