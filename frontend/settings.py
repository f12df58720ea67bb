"""Settings of the frontend (env prefix ``FRONTEND_``).

The frontend knows the gateway's URL and an API key, and where it listens; everything about
models, limits and sessions is the gateway's business.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from lvi.settings import ComponentSettings


class FrontendSettings(ComponentSettings):
    """``FRONTEND_GATEWAY_URL``, ``FRONTEND_API_KEY``, ``FRONTEND_HOST``, ``FRONTEND_PORT``."""

    model_config = SettingsConfigDict(env_prefix="FRONTEND_", extra="ignore")

    port: int = 7860
    gateway_url: str = Field("http://127.0.0.1:8000", description="Base URL of the gateway.")
    api_key: SecretStr | None = Field(
        None, description="Bearer key the UI presents to the gateway (one of GATEWAY_API_KEYS)."
    )
