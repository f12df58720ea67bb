"""Settings of the gateway (env prefix ``GATEWAY_``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator
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

    # -- workers ----------------------------------------------------------------------------
    llava_url: str = _local("llava")
    seem_url: str = _local("seem")
    gligen_url: str = _local("gligen")
    inpaint_url: str = _local("inpaint")
    llava_timeout_s: float = Field(default=180.0, gt=0)
    seem_timeout_s: float = Field(default=60.0, gt=0)
    gligen_timeout_s: float = Field(default=600.0, gt=0)
    inpaint_timeout_s: float = Field(default=120.0, gt=0)
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

    def worker_url(self, name: str) -> str:
        return str(getattr(self, f"{name}_url")).rstrip("/")

    def worker_timeout(self, name: str) -> float:
        return float(getattr(self, f"{name}_timeout_s"))
