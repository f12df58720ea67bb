"""Turning generated token ids into text deltas: incremental detokenization and stop strings.

Pure Python (a tokenizer is passed in), so the same code serves streaming and non-streaming
replies, and a non-streamed reply is exactly the concatenation of the streamed deltas.
"""

from __future__ import annotations

from typing import Any, Protocol


class _Decodes(Protocol):
    def decode(self, ids: list[int], **kwargs: Any) -> str: ...


class IncrementalDecoder:
    """Decode a growing list of token ids into text deltas, one token at a time.

    Decoding each token alone is wrong for byte-level BPE (a character may span tokens) and
    for SentencePiece (leading spaces depend on the previous token), while decoding the whole
    list every step costs O(n^2). This is the windowed scheme of TGI/vLLM: decode a short
    window that starts a few tokens back, emit only what is new, and hold back text that
    ends in an incomplete UTF-8 sequence (U+FFFD) until the next token completes it.
    """

    def __init__(self, tokenizer: _Decodes, skip_special_tokens: bool = True) -> None:
        self.tokenizer = tokenizer
        self.kwargs = {"skip_special_tokens": skip_special_tokens}
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0

    def push(self, ids: list[int]) -> str:
        """Add tokens; return the text they complete (possibly empty)."""
        self.ids.extend(ids)
        prefix = self.tokenizer.decode(
            self.ids[self.prefix_offset : self.read_offset], **self.kwargs
        )
        full = self.tokenizer.decode(self.ids[self.prefix_offset :], **self.kwargs)
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            delta = full[len(prefix) :]
            self.prefix_offset = self.read_offset
            self.read_offset = len(self.ids)
            return delta
        return ""

    def flush(self) -> str:
        """Whatever is still held back (an incomplete character comes out as U+FFFD)."""
        prefix = self.tokenizer.decode(
            self.ids[self.prefix_offset : self.read_offset], **self.kwargs
        )
        full = self.tokenizer.decode(self.ids[self.prefix_offset :], **self.kwargs)
        self.prefix_offset = self.read_offset = len(self.ids)
        return full[len(prefix) :] if len(full) > len(prefix) else ""


class StopMatcher:
    """OpenAI ``stop`` semantics over a text stream.

    Text is released as soon as it cannot be the start of a stop string; when a stop string
    appears, the text before it is released and everything from it on is dropped (the stop
    string itself is not part of the reply, as with OpenAI).
    """

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.buffer = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Add generated text; return the part that is safe to send now."""
        if self.stopped or not text:
            return ""
        if not self.stops:
            return text
        self.buffer += text
        hits = [i for i in (self.buffer.find(s) for s in self.stops) if i >= 0]
        if hits:
            out = self.buffer[: min(hits)]
            self.buffer = ""
            self.stopped = True
            return out
        hold = self._held_suffix()
        out = self.buffer[: len(self.buffer) - hold]
        self.buffer = self.buffer[len(self.buffer) - hold :]
        return out

    def flush(self) -> str:
        """End of generation: release the held tail (it never became a stop string)."""
        out, self.buffer = ("" if self.stopped else self.buffer), ""
        return out

    def _held_suffix(self) -> int:
        """Length of the longest tail of the buffer that is a proper prefix of a stop string."""
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(self.buffer)), best, -1):
                if self.buffer.endswith(stop[:n]):
                    best = n
                    break
        return best
