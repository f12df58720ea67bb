"""Settings of the llava worker (env prefix ``LLAVA_``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator

from lvi.contracts.llava import Quantization
from lvi.settings import WorkerSettings, worker_config

ImagePolicy = Literal["latest", "all"]


class LlavaSettings(WorkerSettings):
    """``LLAVA_BACKEND`` is ``transformers`` (load ``LLAVA_MODEL`` in this process) or ``openai``
    (forward to an OpenAI-compatible server such as vLLM at ``LLAVA_UPSTREAM_URL``)."""

    model_config = worker_config("llava")
    worker: ClassVar[str] = "llava"

    served_model_name: str | None = Field(
        default=None,
        description="Model id shown by /v1/models and in replies; default: LLAVA_MODEL.",
    )
    chat_template: str | None = Field(
        default=None,
        description="Jinja chat template (text, or a path to a file) for checkpoints without one.",
    )
    max_context: int | None = Field(
        default=None,
        ge=64,
        le=1_048_576,
        description="Context length in tokens; default: the model's own. Lower it to cap memory.",
    )
    default_max_tokens: int = Field(
        default=512, ge=1, le=32_768, description="Reply cap when a request sets no max_tokens."
    )
    max_images: int = Field(
        default=8, ge=1, le=64, description="Most image parts one request may carry."
    )
    image_policy: ImagePolicy = Field(
        default="latest",
        description=(
            "'latest': only the latest image's pixels reach the model, older image parts become "
            "a short text note (LLaVA-1.5/NeXT were trained on one image per conversation). "
            "'all': every image is fed (multi-image models such as LLaVA-Interleave)."
        ),
    )
    allow_remote_images: bool = Field(
        default=False,
        description="Fetch http(s) image URLs. Off by default: a worker must not fetch "
        "arbitrary URLs on a client's behalf.",
    )
    remote_image_timeout_s: float = Field(default=10.0, gt=0, le=300)
    quantization: Quantization = Field(
        default="none",
        description=(
            "Weights of the transformers backend: 'none' (as loaded, in LLAVA_DTYPE), '8bit' "
            "(LLM.int8()) or '4bit' (NF4), through bitsandbytes; 8bit/4bit need CUDA "
            "(services/llava/quant.py)."
        ),
    )
    upstream_url: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL for LLAVA_BACKEND=openai, e.g. http://vllm:8000/v1.",
    )
    upstream_api_key: SecretStr | None = Field(
        default=None, description="Bearer key for the upstream."
    )
    upstream_model: str | None = Field(
        default=None, description="Model name to ask the upstream for; default: the first it lists."
    )
    upstream_wait_s: float = Field(
        default=300.0,
        ge=0,
        description="How long loading waits for the upstream to answer /v1/models.",
    )

    @model_validator(mode="after")
    def _forwarder_concurrency(self) -> LlavaSettings:
        # A forwarder holds no model: its slots only bound open upstream calls, and the
        # upstream (vLLM) batches them, so one slot would throttle it for nothing.
        if self.backend == "openai" and "max_concurrency" not in self.model_fields_set:
            self.max_concurrency = 16
        return self
