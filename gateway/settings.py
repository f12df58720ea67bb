"""Settings of the gateway (env prefix ``GATEWAY_``)."""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from lvi import registry
from lvi.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, max_encoded_bytes
from lvi.settings import ComponentSettings

WORKER_NAMES = registry.WORKER_NAMES


def _local(worker: str) -> str:
    """Default URL of a worker: loopback at its registry port (what `lvi up` starts)."""
    return f"http://127.0.0.1:{registry.get(worker).port}"


class GatewaySettings(ComponentSettings):
    """Everything the gateway reads from the environment; ``.env.example`` documents each."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    port: int = 8000

    # -- Redis ------------------------------------------------------------------------------
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="redis:// or rediss:// URL."
    )
    redis_cluster: bool = Field(
        default=False,
        description="Treat redis_url as a Redis Cluster node (redis.asyncio.RedisCluster).",
    )
    redis_timeout_s: float = Field(
        default=5.0, gt=0, description="Socket timeout of one Redis command."
    )
    redis_max_connections: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="Redis connections per gateway process; beyond it requests wait "
        "(up to redis_timeout_s) for a free one instead of failing.",
    )

    # -- auth and limits ----------------------------------------------------------------------
    api_keys: str = Field(default="", description="Comma-separated principal:key pairs.")
    auth_failures_per_minute: int = Field(
        default=20,
        ge=0,
        description="Failed authentications per client address per minute before 429 "
        "auth_throttled (0: no throttle).",
    )
    allow_anonymous: bool = Field(
        default=False,
        description="Accept requests without a key as principal 'anonymous' (dev only).",
    )
    # -- sign-in (gateway/users.py, gateway/auth_tokens.py, gateway/signin.py) ------------------
    users: str = Field(
        default="",
        description="Password users, comma-separated username[=principal]:scrypt-hash "
        "(lvi users hash-password).",
    )
    users_file: str = Field(
        default="", description="A users file: 'username principal hash' per line, # comments."
    )
    login_ttl_s: int = Field(
        default=12 * 3600, ge=60, description="Lifetime of a sign-in token unless asked for less."
    )
    delegates: str = Field(
        default="",
        description="Comma-separated principals whose API key may get a sign-in token for any "
        "other principal (POST /v1/auth/token with 'principal'): an application that signs "
        "its own users in (SSO) and acts for each with that user's token. Empty: nobody.",
    )
    login_max_ttl_s: int = Field(
        default=7 * 24 * 3600, ge=60, description="Longest sign-in token a caller may ask for."
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="Proxies (IPs, CIDRs, comma-separated; '*' everyone) whose X-Forwarded-For "
        "names the client address (failed-auth throttle, logs). Empty: trust nobody.",
    )
    rate_limit_per_minute: int = Field(default=600, ge=0, description="Per principal; 0 disables.")
    rate_limit_burst: int = Field(default=120, ge=1, description="Requests allowed at once.")
    # Unset, the byte limits follow the pixel limit (see _derive_byte_limits).
    max_body_bytes: int = Field(default=DEFAULT_MAX_BYTES + 1024 * 1024, ge=1024)
    max_image_bytes: int = Field(default=DEFAULT_MAX_BYTES, ge=1024)
    max_image_pixels: int = Field(default=DEFAULT_MAX_PIXELS, ge=64 * 64)

    # -- sessions ---------------------------------------------------------------------------
    session_ttl_s: int = Field(
        default=7 * 24 * 3600, ge=60, description="Refreshed on every write."
    )
    max_versions: int = Field(default=200, ge=1, description="Versions per session.")
    max_session_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024, description="Image+mask bytes."
    )
    max_messages: int = Field(default=1000, ge=2, description="Chat messages kept per session.")
    chat_history_messages: int = Field(
        default=20, ge=0, description="Earlier messages sent to the model with each turn."
    )
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=1)

    # -- quotas per principal (gateway/quotas.py; 0 = no limit) ---------------------------------
    quota_bytes: int = Field(
        default=2 * 1024**3, ge=0, description="Image+mask bytes one principal may store."
    )
    quota_sessions: int = Field(default=500, ge=0, description="Live sessions per principal.")
    quota_jobs: int = Field(
        default=8,
        ge=0,
        description="Concurrent long jobs (generate, inpaint, remove, replace, move) per principal.",
    )
    quotas: str = Field(
        default="",
        description="Per-principal overrides: 'alice:bytes=1GiB,sessions=50;*:jobs=2' "
        "('*' = everyone's default).",
    )

    # -- workers ----------------------------------------------------------------------------
    # One URL and one timeout per worker of the registry (lvi/registry.py): a new worker needs
    # no field here. Each is set by GATEWAY_<WORKER>_URL / GATEWAY_<WORKER>_TIMEOUT_S (or the
    # keyword ``<worker>_url=`` / ``<worker>_timeout_s=``), see _per_worker.
    worker_urls: dict[str, str] = Field(
        default_factory=lambda: {w.name: _local(w.name) for w in registry.WORKERS},
        description="Worker name -> base URL. Unset: loopback at the worker's registry port.",
    )
    worker_timeouts: dict[str, float] = Field(
        default_factory=lambda: {w.name: w.gateway_timeout_s for w in registry.WORKERS},
        description="Worker name -> timeout of one call (s). Unset: the registry's.",
    )
    connect_timeout_s: float = Field(default=2.0, gt=0)
    connect_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of a connection that failed before sending."
    )
    max_connections: int = Field(default=64, ge=1, description="Pooled connections per worker.")
    breaker_failures: int = Field(
        default=3, ge=1, description="Consecutive failures that open a worker's circuit."
    )
    breaker_reset_s: float = Field(
        default=10.0, gt=0, description="Open time before one trial call."
    )
    probe_timeout_s: float = Field(
        default=2.0, gt=0, description="Timeout of /readyz and /v1/info probes."
    )

    @model_validator(mode="before")
    @classmethod
    def _derive_byte_limits(cls, data: Any) -> Any:
        """An unset byte limit follows the pixel limit: any image within the pixel limit, of
        any content, can be uploaded and stored (``lvi.images.max_encoded_bytes``)."""
        if isinstance(data, dict):
            pixels = int(data.get("max_image_pixels") or DEFAULT_MAX_PIXELS)
            if not data.get("max_image_bytes"):
                data["max_image_bytes"] = max_encoded_bytes(pixels)
            if not data.get("max_body_bytes"):  # an upload: one image plus multipart framing
                data["max_body_bytes"] = int(data["max_image_bytes"]) + 1024 * 1024
        return data

    @model_validator(mode="before")
    @classmethod
    def _per_worker(cls, data: Any) -> Any:
        """Fold ``<worker>_url`` / ``<worker>_timeout_s`` (keywords, else the environment's
        ``GATEWAY_<WORKER>_URL`` / ``GATEWAY_<WORKER>_TIMEOUT_S``) into the two mappings, on top
        of the registry's defaults; a per-worker value wins over the same mapping's entry."""
        if not isinstance(data, dict):
            return data
        env = {k.upper(): v for k, v in os.environ.items()}  # pydantic-settings' case rule
        urls = {w.name: _local(w.name) for w in registry.WORKERS}
        timeouts: dict[str, Any] = {w.name: w.gateway_timeout_s for w in registry.WORKERS}
        urls.update(_as_dict(data.get("worker_urls")))
        timeouts.update(_as_dict(data.get("worker_timeouts")))
        for name in WORKER_NAMES:
            for key, into in ((f"{name}_url", urls), (f"{name}_timeout_s", timeouts)):
                value = data.pop(key, None)
                if value is None:
                    value = env.get(f"GATEWAY_{key.upper()}") or None
                if value is not None:
                    into[name] = value
        data["worker_urls"], data["worker_timeouts"] = urls, timeouts
        return data

    @field_validator("worker_timeouts")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(name for name, s in value.items() if s <= 0)
        if bad:
            raise ValueError(f"worker timeouts must be > 0 (not for {', '.join(bad)})")
        return value

    @model_validator(mode="after")
    def _check_quotas(self) -> GatewaySettings:
        from gateway.quotas import parse_quotas  # a typo in GATEWAY_QUOTAS fails at start

        parse_quotas(self.quotas)
        return self

    def worker_url(self, name: str) -> str:
        return self.worker_urls[name].rstrip("/")

    def worker_timeout(self, name: str) -> float:
        return float(self.worker_timeouts[name])


def _as_dict(value: Any) -> dict[str, Any]:
    """A mapping given as a dict or (from the environment) as JSON; empty when unset."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value)
