"""Hooks into transformers' ``generate``: seeded sampling, cancellation, and a text streamer.

Imported lazily (it imports torch and transformers) by :class:`services.llava.backend.LlavaBackend`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import LogitsProcessor, StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from services.llava.textstream import IncrementalDecoder, StopMatcher


class SeededSampler(LogitsProcessor):
    """Temperature + top-p sampling with a private ``torch.Generator``.

    ``generate`` runs greedy (``do_sample=False``) and this processor, last in the list, leaves
    only the sampled token finite, so argmax picks it. Each request owns its generator, so a
    seed reproduces a reply even while other requests sample at the same time: nothing
    touches torch's global RNG, and no lock serialises sampling.
    """

    def __init__(self, temperature: float, top_p: float, seed: int, device: torch.device) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logits = scores.float() / self.temperature
        if self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            probs = torch.softmax(sorted_logits, dim=-1)
            # Drop a token once the mass before it already reaches top_p (the first one stays).
            drop = (probs.cumsum(dim=-1) - probs) >= self.top_p
            # The most likely token always stays: a top_p that rounds to 0 in float32 (1e-300)
            # would otherwise drop every token and leave nothing to sample.
            drop[..., 0] = False
            sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
            logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
        probs = torch.softmax(logits, dim=-1)
        if not bool(torch.isfinite(probs).all()):
            chosen = scores.argmax(dim=-1, keepdim=True)  # degenerate scores: fall back to greedy
        else:
            chosen = torch.multinomial(probs, 1, generator=self.generator)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(-1, chosen, 0.0)  # type: ignore[return-value]


class FlagStop(StoppingCriteria):
    """Stops generation when ``should_stop()`` says so (client gone, deadline, stop string)."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        flag = self.should_stop()
        return torch.full((input_ids.shape[0],), flag, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


class DeltaStreamer(BaseStreamer):
    """transformers streamer that turns each new token into a text delta at once.

    Unlike ``TextStreamer`` (which waits for a whole word), a delta leaves as soon as its
    token is decoded, which is what OpenAI-style token streaming promises. It runs inside the
    ``generate`` call (no second thread), so the inference slot is held exactly as long as the
    model computes.
    """

    def __init__(
        self,
        tokenizer: Any,
        stop: StopMatcher,
        on_text: Callable[[str], None],
        on_tokens: Callable[[list[int]], None],
    ) -> None:
        self.decoder = IncrementalDecoder(tokenizer)
        self.stop = stop
        self.on_text = on_text
        self.on_tokens = on_tokens
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True  # the first call carries the prompt
            return
        ids = [int(i) for i in value.reshape(-1).tolist()]
        self.on_tokens(ids)
        text = self.stop.feed(self.decoder.push(ids))
        if text:
            self.on_text(text)

    def end(self) -> None:
        text = self.stop.feed(self.decoder.flush())
        text += self.stop.flush()
        if text:
            self.on_text(text)
