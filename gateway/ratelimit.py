"""Per-principal rate limit in Redis (GCRA: a smooth rate with a burst), shared by every
gateway process. Over the limit: 429 with Retry-After."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from redis import exceptions as redis_errors

from lvi.errors import RateLimited

from .sessions.errors import is_oom

log = logging.getLogger("lvi.gateway.ratelimit")

# GCRA ("generic cell rate algorithm"): one key per principal holds the theoretical arrival
# time (TAT). A request is allowed while TAT - now <= burst window. Redis' clock is used, so
# every gateway process agrees.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > window then
  return {0, new_tat - now - window}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now + 1000)
return {1, 0}
"""


class RateLimiter:
    """``per_minute`` requests per principal on average, up to ``burst`` at once."""

    def __init__(
        self,
        redis: Any,
        per_minute: int,
        burst: int,
        prefix: str = "lvi",
        on_store_error: Callable[[str], None] | None = None,
    ) -> None:
        self.on_store_error = on_store_error
        self.enabled = per_minute > 0
        self.interval_ms = 60_000 / per_minute if per_minute > 0 else 0
        self.window_ms = self.interval_ms * burst
        self.prefix = prefix
        self._script = redis.register_script(_GCRA)

    async def check(self, principal: str) -> None:
        """Raise 429 when ``principal`` is over its rate. Fails open if Redis is down: the
        request then meets the store's own 503 if it needs sessions, and stateless calls
        (OpenAI-compatible chat) keep working. It also fails open when Redis is full (the
        GCRA script writes): a full store must not turn reads into errors."""
        if not self.enabled:
            return
        try:
            allowed, wait_ms = await self._script(
                keys=[f"{self.prefix}:rl:{{{principal}}}"],
                args=[int(self.interval_ms), int(self.window_ms)],
            )
        except redis_errors.RedisError as e:
            full = is_oom(e)
            log.warning("rate limit skipped, redis %s: %s", "full" if full else "unavailable", e)
            if self.on_store_error is not None:
                self.on_store_error("store_full" if full else "store_unavailable")
            return
        if not int(allowed):
            raise RateLimited(
                "Too many requests for this API key; slow down.",
                retry_after=max(1.0, int(wait_ms) / 1000),
                code="rate_limited",
            )
