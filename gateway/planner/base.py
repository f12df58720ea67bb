"""The planner interface, its settings, and the factory that picks one from the settings."""

from __future__ import annotations

from typing import Literal, Protocol

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.planner.steps import Plan, PlanContext


class Planner(Protocol):
    """Turns one chat message plus the session's state into a :class:`Plan`. Never raises for
    bad input: a message it cannot act on gives an empty plan or a clarification."""

    name: str

    async def plan(self, message: str, context: PlanContext) -> Plan: ...


class PlannerSettings(BaseSettings):
    """Which planner the gateway uses (env prefix ``GATEWAY_PLANNER_``)."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_PLANNER_", extra="ignore")

    kind: Literal["rules", "llm"] = Field(
        default="rules", description="'rules' (grammar, no model) or 'llm' (OpenAI-compatible)."
    )
    url: str = Field(
        default="http://127.0.0.1:8000/v1",
        description="Base URL of an OpenAI-compatible API (the part before /chat/completions).",
    )
    model: str = Field(default="", description="Model name sent to the endpoint.")
    api_key: SecretStr | None = Field(default=None, description="Bearer key, if the API needs one.")
    timeout_s: float = Field(default=10.0, gt=0, description="Whole request; then rules answers.")
    max_tokens: int = Field(default=512, ge=16, le=8192)


def make_planner(
    settings: PlannerSettings | None = None, *, http_client: httpx.AsyncClient | None = None
) -> Planner:
    """The planner ``settings.kind`` names. ``http_client`` (llm only) is owned by the caller."""
    from gateway.planner.llm import LlmPlanner
    from gateway.planner.rules import RulesPlanner

    settings = settings or PlannerSettings()
    if settings.kind == "llm":
        return LlmPlanner(settings, http_client=http_client)
    return RulesPlanner()
