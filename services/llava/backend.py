"""The transformers backend: any LLaVA-family checkpoint behind one ``generate`` call.

It loads whatever ``AutoModelForImageTextToText``/``AutoProcessor`` load (LLaVA-1.5,
LLaVA-NeXT, LLaVA-Interleave, LLaVA-OneVision where its processor can be built), by hub id
or local folder, and lets the processor's own chat template build the prompt. One call of
:meth:`LlavaBackend.generate` serves both streaming and non-streaming replies: text deltas go
out through ``job.emit`` as they are decoded (a no-op when nobody streams).
"""

from __future__ import annotations

import copy
import io
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from lvi.contracts.llava import ChatCompletionRequest
from lvi.errors import BadRequest, LviError, PayloadTooLarge
from lvi.images import EncodedImage, ImageLimits, encode_png
from lvi.profiles import missing_model, resolve_model
from lvi.settings import resolve_device, resolve_dtype
from lvi.worker import Cancelled, Job
from services.llava.conversation import (
    ImageRef,
    Message,
    ParsedChat,
    apply_image_policy,
    drop_oldest_turns,
    fit_to_context,
    parse_request,
    split_turns,
)
from services.llava.settings import LlavaSettings

log = logging.getLogger("lvi.llava")

MIN_TEMPERATURE = 1e-4

TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class PromptInfo:
    """What the prompt became: sent as the first stream event, before any token."""

    prompt_tokens: int
    truncated_turns: int
    max_new_tokens: int


@dataclass
class ChatResult:
    """One finished generation."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    truncated_turns: int
    time_to_first_token_s: float | None
    decode_seconds: float


class LlavaMetrics:
    """Token-level metrics, registered in the worker app's own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.prompt_tokens = Counter(
            "lvi_llava_prompt_tokens", "Prompt tokens (images included).", registry=r
        )
        self.completion_tokens = Counter(
            "lvi_llava_completion_tokens", "Generated tokens.", registry=r
        )
        self.generations = Counter(
            "lvi_llava_generations", "Finished generations.", ["finish_reason"], registry=r
        )
        self.truncated_turns = Counter(
            "lvi_llava_truncated_turns", "Turns dropped to fit the context.", registry=r
        )
        self.ttft = Histogram(
            "lvi_llava_time_to_first_token_seconds",
            "From the start of generation to the first token.",
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tokens_per_second = Histogram(
            "lvi_llava_decode_tokens_per_second",
            "Decode speed of one reply.",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
            registry=r,
        )
        # Plain numbers for /v1/info (tests and operators read them without a Prometheus parser).
        self.lock = threading.Lock()
        self.generated = 0
        self.cancelled = 0
        self.finished = 0

    def add_tokens(self, n: int) -> None:
        self.completion_tokens.inc(n)
        with self.lock:
            self.generated += n

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return {
                "generated_tokens": self.generated,
                "cancelled_generations": self.cancelled,
                "finished_generations": self.finished,
            }


def _warmup_request() -> ChatCompletionRequest:
    import numpy as np

    pixels = np.full((64, 64, 3), 127, np.uint8)
    uri = EncodedImage.from_bytes(encode_png(pixels)).to_data_uri()
    return ChatCompletionRequest.model_validate(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": uri}},
                        {"type": "text", "text": "Describe the image."},
                    ],
                }
            ],
            "max_tokens": 2,
            "temperature": 0,
        }
    )


class LlavaBackend:
    """LLaVA on transformers. ``load``/``warmup``/``generate`` run in the worker's threads."""

    name = "transformers"

    def __init__(self, settings: LlavaSettings) -> None:
        self.settings = settings
        self.device = resolve_device(settings.device)
        self.dtype_name = resolve_dtype(settings.dtype, self.device)
        self.model_path: str | None = None
        self.model: Any = None
        self.processor: Any = None
        self.chat_template: str | None = None
        self.context_length = settings.max_context or 0
        self.metrics = LlavaMetrics()

    # -- lifecycle -------------------------------------------------------------------------
    def bind_metrics(self, registry: CollectorRegistry) -> None:
        self.metrics = LlavaMetrics(registry)

    @property
    def model_id(self) -> str:
        return self.settings.served_model_name or self.settings.model or "llava"

    def load(self) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor
        from transformers.utils import logging as hf_logging

        disable: Any = hf_logging.disable_progress_bar
        disable()  # progress bars would garble the JSON log stream
        if not self.settings.model:
            raise ValueError("LLAVA_MODEL is not set (and the profile names no model)")
        ref = resolve_model(self.settings.model, self.settings.cache_dir, worker="llava")
        dtype = getattr(torch, self.dtype_name)
        kwargs: dict[str, Any] = {"dtype": dtype}
        if self.device.startswith("cuda"):
            kwargs["device_map"] = self.device  # load straight onto the GPU, not via host RAM
        # --- quantization (LLAVA_QUANTIZATION; services/llava/quant.py) ---
        from services.llava.quant import check_quantization, quantization_config

        mode = self.settings.quantization
        check_quantization(mode, self.device, torch.cuda.is_available())
        quant = quantization_config(mode, dtype)
        if quant is not None:
            kwargs["quantization_config"] = quant
        # --- end quantization ---
        try:
            auto_processor: Any = AutoProcessor  # untyped in transformers
            self.processor = auto_processor.from_pretrained(ref)
            self.model = AutoModelForImageTextToText.from_pretrained(ref, **kwargs)
        except OSError as e:
            # Not on disk and not downloadable (HF_HUB_OFFLINE, no network): say how to get it.
            raise missing_model(self.settings.model, "llava", e) from e
        if not self.device.startswith("cuda") and quant is None:
            self.model.to(self.device)
        self.model.eval()
        self.model_path = ref
        self.chat_template = self._resolve_template()
        text_config = self.model.config.get_text_config()
        own = getattr(text_config, "max_position_embeddings", None) or 4096
        self.context_length = self.settings.max_context or int(own)
        self.image_token = getattr(self.processor, "image_token", "<image>")
        log.info(
            "loaded %s (%s) on %s as %s, quantization %s, context %d",
            ref,
            type(self.model).__name__,
            self.device,
            self.dtype_name,
            mode,
            self.context_length,
        )

    def _resolve_template(self) -> str:
        configured = self.settings.chat_template
        if configured:
            path = Path(configured).expanduser()
            return path.read_text() if path.is_file() else configured
        template = getattr(self.processor, "chat_template", None)
        if not template:
            raise ValueError(
                f"Model '{self.settings.model}' has no chat template; set LLAVA_CHAT_TEMPLATE "
                "to a Jinja template (text or file)."
            )
        return str(template)

    def warmup(self) -> None:
        """One real generation (image included) so the first client does not pay for it."""
        chat = self.parse(_warmup_request())
        self.generate(chat, Job())

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model_id,
            "model_path": self.model_path,
            "model_class": type(self.model).__name__ if self.model is not None else None,
            "device": self.device,
            "dtype": self.dtype_name,
            "quantization": self.settings.quantization,
            "context_length": self.context_length,
            "max_images": self.settings.max_images,
            "image_policy": self.settings.image_policy,
            **self.metrics.snapshot(),
        }

    # -- request checks (event loop, before a slot is taken) ------------------------------------
    def parse(self, req: ChatCompletionRequest) -> ParsedChat:
        """Semantic validation; 400s here cost no inference slot."""
        chat = parse_request(
            req,
            default_max_tokens=self.settings.default_max_tokens,
            max_images=self.settings.max_images,
            allow_remote=self.settings.allow_remote_images,
        )
        if self.context_length and chat.max_tokens > self.context_length:
            raise BadRequest(
                f"max_tokens is {chat.max_tokens}, but the model's context is "
                f"{self.context_length} tokens (prompt included).",
                code="max_tokens_too_large",
                param="max_tokens",
            )
        return chat

    # -- inference (worker thread) ---------------------------------------------------------
    def _fetch(self, ref: ImageRef, limits: ImageLimits) -> EncodedImage:
        """Download an http(s) image (only when LLAVA_ALLOW_REMOTE_IMAGES), bounded in bytes."""
        import httpx

        assert ref.url is not None
        buf = io.BytesIO()
        try:
            with httpx.stream(
                "GET", ref.url, timeout=self.settings.remote_image_timeout_s, follow_redirects=True
            ) as r:
                r.raise_for_status()
                for chunk in r.iter_bytes():
                    buf.write(chunk)
                    if buf.tell() > limits.max_bytes:
                        raise PayloadTooLarge(
                            f"Image at {ref.url} is over {limits.max_bytes} bytes.",
                            code="image_too_large",
                            param=ref.param,
                        )
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as e:
            raise BadRequest(
                f"Could not fetch the image: {type(e).__name__}.",
                code="image_fetch_failed",
                param=ref.param,
            ) from e
        return EncodedImage.from_bytes(buf.getvalue(), limits, param=ref.param)

    def _pixels(self, messages: list[Message]) -> dict[int, Any]:
        """Decode every image that reaches the model (id(ref) -> RGB PIL image)."""
        limits = ImageLimits.from_env()
        out: dict[int, Any] = {}
        for m in messages:
            for ref in m.images():
                encoded = ref.image if ref.image is not None else self._fetch(ref, limits)
                try:
                    out[id(ref)] = encoded.to_pil("RGB")
                except LviError as e:
                    e.param = e.param or ref.param
                    raise
        return out

    def _image_tokens(self, image: Any) -> int:
        """How many tokens an image becomes (LLaVA-NeXT's depend on its size)."""
        try:
            mm = self.processor._get_num_multimodal_tokens(
                image_sizes=[(image.height, image.width)]
            )
            return int(mm.num_image_tokens[0])
        except Exception:  # processors without the helper: measure it
            enc = self.processor(images=[image], text=self.image_token, return_tensors="pt")
            ids = enc["input_ids"][0].tolist()
            return max(1, int(ids.count(self.processor.image_token_id)))

    def _render(self, messages: list[Message], pixels: dict[int, Any] | None = None) -> Any:
        from jinja2.exceptions import TemplateError

        from services.llava.conversation import template_messages

        conv = template_messages(messages, pixels)
        try:
            if pixels is None:
                return self.processor.apply_chat_template(
                    conv,
                    chat_template=self.chat_template,
                    add_generation_prompt=True,
                    tokenize=False,
                )
            # sanitize_control_tokens: an "<image>" or "</s>" typed by the user stays text; it
            # can neither fake an image placeholder nor end a turn.
            return self.processor.apply_chat_template(
                conv,
                chat_template=self.chat_template,
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
                sanitize_control_tokens=True,
                return_tensors="pt",
            )
        except TemplateError as e:
            raise BadRequest(
                f"The model's chat template refused this conversation: {e}",
                code="chat_template_error",
                param="messages",
            ) from e
        except ValueError as e:
            log.warning("processor refused the input: %s", e)
            raise BadRequest(
                f"The model's processor refused the input: {e}", code="unprocessable_input"
            ) from e

    def _build_inputs(self, chat: ParsedChat, job: Job) -> tuple[Any, PromptInfo]:
        """Image policy, decoding, history truncation and the final tokenised inputs."""
        messages = apply_image_policy(chat.messages, self.settings.image_policy)
        pixels = self._pixels(messages)
        job.check()
        ctx = self.context_length
        # Keep room for the reply, but never more than a quarter of the context: a long
        # history loses old turns, not the answer's length.
        budget = ctx - min(chat.max_tokens, ctx // 4)
        image_tokens = {key: self._image_tokens(img) for key, img in pixels.items()}

        def count(msgs: list[Message]) -> int:
            text = self._render(msgs)
            n = len(self.processor.tokenizer(text)["input_ids"])
            return n + sum(image_tokens[id(r)] - 1 for m in msgs for r in m.images())

        messages, dropped = fit_to_context(messages, count, budget)
        while True:
            inputs = self._render(messages, pixels)
            prompt_tokens = int(inputs["input_ids"].shape[1])
            if prompt_tokens <= budget:
                break
            # The estimate was short (templates and tokenizers disagree at the edges).
            if len(split_turns(messages)[1]) <= 1:
                raise BadRequest(
                    f"The latest message needs {prompt_tokens} tokens but the model's context "
                    f"leaves {budget} for the prompt.",
                    code="context_length_exceeded",
                    param="messages",
                )
            messages, dropped = drop_oldest_turns(messages, 1), dropped + 1
        max_new = min(chat.max_tokens, ctx - prompt_tokens)
        return inputs, PromptInfo(prompt_tokens, dropped, max_new)

    def generate(self, chat: ParsedChat, job: Job) -> ChatResult:
        """Generate one reply; emit ``("meta", PromptInfo)`` then ``("delta", text)`` events."""
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        from services.llava.hf import DeltaStreamer, FlagStop, SeededSampler
        from services.llava.textstream import StopMatcher

        inputs, meta = self._build_inputs(chat, job)
        if meta.truncated_turns:
            self.metrics.truncated_turns.inc(meta.truncated_turns)
        job.emit(("meta", meta))
        inputs = {
            k: (
                v.to(self.device, dtype=self.model.dtype)
                if v.is_floating_point()
                else v.to(self.device)
            )
            for k, v in inputs.items()
        }

        gen = copy.deepcopy(self.model.generation_config)
        gen.max_new_tokens = meta.max_new_tokens
        gen.max_length = None
        gen.min_new_tokens = None
        gen.do_sample = False  # sampling, when asked for, is done by SeededSampler
        gen.num_beams = 1
        gen.temperature = gen.top_p = gen.top_k = None
        eos = gen.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if gen.pad_token_id is None:
            gen.pad_token_id = self.processor.tokenizer.pad_token_id or next(iter(eos_ids), 0)

        processors = LogitsProcessorList()
        # Below MIN_TEMPERATURE sampling is greedy in all but name, and dividing logits by a
        # denormal (a valid float in [0, 2]) would overflow them.
        if chat.temperature >= MIN_TEMPERATURE:
            seed = chat.seed if chat.seed is not None else secrets.randbits(63)
            processors.append(SeededSampler(chat.temperature, chat.top_p, seed, self.model.device))

        stop = StopMatcher(chat.stop)
        pieces: list[str] = []
        state: dict[str, Any] = {"n": 0, "last": None, "first": None}
        t0 = time.perf_counter()

        def on_tokens(ids: list[int]) -> None:
            if state["first"] is None:
                state["first"] = time.perf_counter() - t0
            state["n"] += len(ids)
            state["last"] = ids[-1]
            self.metrics.add_tokens(len(ids))

        def on_text(text: str) -> None:
            pieces.append(text)
            job.emit(("delta", text))

        streamer = DeltaStreamer(self.processor.tokenizer, stop, on_text, on_tokens)
        stopping = StoppingCriteriaList([FlagStop(lambda: job.cancelled or stop.stopped)])
        self.metrics.prompt_tokens.inc(meta.prompt_tokens)
        with torch.inference_mode():
            self.model.generate(
                **inputs,
                generation_config=gen,
                logits_processor=processors,
                stopping_criteria=stopping,
                streamer=streamer,
            )
        elapsed = time.perf_counter() - t0
        if job.cancelled:
            with self.metrics.lock:
                self.metrics.cancelled += 1
            self.metrics.generations.labels(finish_reason="cancelled").inc()
            log.info("generation cancelled after %d tokens", state["n"])
            raise Cancelled()

        n = int(state["n"])
        if stop.stopped or state["last"] in eos_ids:
            reason = "stop"
        elif n >= meta.max_new_tokens:
            reason = "length"
        else:
            reason = "stop"
        first = state["first"]
        decode = elapsed - (first or 0.0)
        if first is not None:
            self.metrics.ttft.observe(first)
        if n > 1 and decode > 0:
            self.metrics.tokens_per_second.observe((n - 1) / decode)
        self.metrics.generations.labels(finish_reason=reason).inc()
        with self.metrics.lock:
            self.metrics.finished += 1
        return ChatResult(
            text="".join(pieces),
            finish_reason=reason,
            prompt_tokens=meta.prompt_tokens,
            completion_tokens=n,
            truncated_turns=meta.truncated_turns,
            time_to_first_token_s=first,
            decode_seconds=decode,
        )
