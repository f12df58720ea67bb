"""Settings of the frontend (env prefix ``FRONTEND_``).

The frontend knows the gateway's URL, how visitors sign in, and where it listens; everything
about models, limits and sessions is the gateway's business.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from lvi.settings import ComponentSettings

AuthMode = Literal["signin", "single-user"]


class FrontendSettings(ComponentSettings):
    """``FRONTEND_GATEWAY_URL``, ``FRONTEND_AUTH``, ``FRONTEND_API_KEY``, ``FRONTEND_HOST``,
    ``FRONTEND_PORT``, ``FRONTEND_FORWARD_CLIENT_ADDRESS``.

    ``signin`` (the default): every visitor signs in with a username and password or their own
    API key, and the UI calls the gateway with that visitor's credentials; the frontend holds
    no key at all. ``single-user``: no sign-in, every visitor acts with ``FRONTEND_API_KEY`` (or
    as the gateway's anonymous principal); only for one person on their own machine, and the
    page says so.
    """

    model_config = SettingsConfigDict(env_prefix="FRONTEND_", extra="ignore")

    port: int = 7860
    gateway_url: str = Field("http://127.0.0.1:8000", description="Base URL of the gateway.")
    auth: AuthMode = Field(
        "signin", description="signin: each visitor signs in; single-user: no sign-in (laptop)."
    )
    api_key: SecretStr | None = Field(
        None, description="single-user mode only: the key every visitor acts with."
    )
    forward_client_address: bool = Field(
        True,
        description="Send each visitor's address to the gateway as X-Forwarded-For (the "
        "gateway uses it only if GATEWAY_FORWARDED_ALLOW_IPS trusts this frontend), so one "
        "visitor's failed sign-ins throttle only that visitor.",
    )

    @field_validator("api_key", mode="after")
    @classmethod
    def _empty_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        # Compose passes ``FRONTEND_API_KEY=`` when it is unset in .env.
        return value if value is not None and value.get_secret_value() else None

    @model_validator(mode="after")
    def _no_shared_key(self) -> FrontendSettings:
        # A key in the environment of a sign-in frontend would be a shared credential that
        # nothing uses: refuse it rather than let an operator believe it does something.
        if self.auth == "signin" and self.api_key is not None:
            raise ValueError(
                "FRONTEND_API_KEY is only used with FRONTEND_AUTH=single-user; with sign-in "
                "every visitor brings their own credentials. Unset it, or set "
                "FRONTEND_AUTH=single-user for a one-person machine."
            )
        return self
