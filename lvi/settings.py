"""Settings base classes (pydantic-settings). One class per component, one env prefix each.

Shared knobs live under ``LVI_`` (profile, cache folder, image limits); every component
adds its own prefix (``INPAINT_``, ``LLAVA_``, ``GATEWAY_``, ...). ``.env.example`` lists them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lvi import registry

Profile = Literal["tiny", "cpu", "gpu", "gpu-16gb", "local"]


def default_cache_dir() -> Path:
    return Path(os.environ.get("LVI_CACHE_DIR") or Path.home() / ".cache" / "lvi").expanduser()


def default_profile() -> str:
    return os.environ.get("LVI_PROFILE", "cpu")


class ComponentSettings(BaseSettings):
    """What every process has: where it listens and how it logs."""

    model_config = SettingsConfigDict(env_prefix="LVI_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8000
    # Shared defaults from LVI_LOG_LEVEL / LVI_LOG_JSON; a component's own prefix overrides.
    log_level: str = Field(default_factory=lambda: os.environ.get("LVI_LOG_LEVEL", "info"))
    log_json: bool = Field(
        default_factory=lambda: (
            os.environ.get("LVI_LOG_JSON", "true").lower() not in ("0", "false", "no", "off")
        )
    )


class WorkerSettings(ComponentSettings):
    """Settings every model worker shares. Subclasses set their env prefix and ``worker``.

    Fields left unset (``model``, ``backend``, ...) take the value of the active profile's row
    in :data:`lvi.profiles.PROFILES`, and ``port`` the worker's default port in
    :mod:`lvi.registry`; anything set explicitly wins. Subclasses take their env prefix from
    :func:`worker_config`.
    """

    worker: ClassVar[str] = ""

    profile: Profile = Field(default_factory=default_profile)  # type: ignore[arg-type]
    cache_dir: Path = Field(default_factory=default_cache_dir)
    model: str | None = Field(
        default=None,
        description="Hub id, local folder/file, or 'tiny:<name>'. Unset: the profile's choice.",
    )
    backend: str | None = Field(default=None, description="Backend name; unset: the profile's.")
    device: str = Field(default="auto", description="'auto', 'cpu', 'cuda' or 'cuda:N'.")
    dtype: str = Field(default="auto", description="'auto' (fp16 on CUDA, fp32 on CPU) or a name.")
    gpu_memory_fraction: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Cap on this worker's CUDA allocator, as a fraction of the GPU's memory "
        "(several workers on one card; lvi/gpu.py). Unset: no cap. Ignored without CUDA.",
    )
    max_concurrency: int = Field(default=1, ge=1, le=64)
    max_queue: int = Field(default=8, ge=0, le=10_000)
    request_timeout_s: float = Field(default=300.0, gt=0)
    max_request_timeout_s: float = Field(default=3600.0, gt=0)
    warmup: bool = True
    max_body_bytes: int = Field(
        default_factory=lambda: _default_body_bytes(),
        ge=1024,
        description="Unset: derived from the image limits (two images and a mask in base64), "
        "so a request whose images are within those limits is never refused for its size.",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.worker:
            from lvi.profiles import profile_defaults

            spec = registry.BY_NAME.get(cls.worker)
            if spec is not None and data.get("port") is None:
                data["port"] = spec.port  # the registry holds each worker's default port
            profile = str(data.get("profile") or default_profile())
            for key, value in profile_defaults(cls.worker, profile).items():
                if data.get(key) is None:
                    data[key] = value
        return data


def worker_config(worker: str) -> SettingsConfigDict:
    """The pydantic-settings config of worker ``worker``: its env prefix from the registry."""
    return SettingsConfigDict(env_prefix=f"{registry.get(worker).env_prefix}_", extra="ignore")


def _default_body_bytes() -> int:
    from lvi.images import ImageLimits

    return ImageLimits.from_env().max_body_bytes(images=2, masks=1)


def resolve_device(device: str) -> str:
    """'auto' picks CUDA when torch sees a GPU (torch is imported lazily)."""
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def resolve_dtype(dtype: str, device: str) -> str:
    """'auto' is float16 on CUDA and float32 elsewhere."""
    if dtype != "auto":
        return dtype
    return "float16" if device.startswith("cuda") else "float32"
