"""Failed-auth throttling per client address: guessing keys gets slow, not cheap.

After ``max_failures`` wrong or missing keys from one address within ``window_s`` seconds, every
request from that address is answered 429 (``auth_throttled``, ``Retry-After``) until the oldest
failure leaves the window, before its key is even looked at, so a valid key sent from a
throttled address waits too (the attacker cannot use the answer to tell a hit).

Counted in-process, not in Redis, on purpose: a flood of bad keys is then never a flood of
Redis writes (it would compete with real work and with the store's memory), and it keeps
working while Redis is down. With N gateway replicas an address gets at most N times the
budget, which is still a few hundred guesses a minute against 192-bit keys. The address is the
TCP peer, or behind a proxy named in ``GATEWAY_FORWARDED_ALLOW_IPS`` (the web UI, an ingress)
the client that proxy names in ``X-Forwarded-For`` (gateway/proxies.py). Failed password
sign-ins (``POST /v1/auth/login``) and expired or revoked sign-in tokens count here too.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

from lvi.errors import RateLimited


class FailedAuthThrottle:
    """Sliding-window counter of failed authentications per address (bounded memory)."""

    def __init__(
        self,
        max_failures: int = 20,
        window_s: float = 60.0,
        *,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_addresses = max_addresses
        self.clock = clock
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def _recent(self, address: str, now: float) -> collections.deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and now - times[0] > self.window_s:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def check(self, address: str) -> None:
        """Raise 429 when ``address`` used up its failures in the window."""
        if self.max_failures <= 0:
            return
        now = self.clock()
        times = self._recent(address, now)
        if times is not None and len(times) >= self.max_failures:
            retry = self.window_s - (now - times[0])
            raise RateLimited(
                f"Too many failed authentications from this address; retry in {retry:.0f} s.",
                code="auth_throttled",
                retry_after=max(1.0, retry),
            )

    def failed(self, address: str) -> None:
        """Record one failed authentication from ``address``."""
        if self.max_failures <= 0:
            return
        now = self.clock()
        times = self._recent(address, now)
        if times is None:
            times = self._failures[address] = collections.deque(maxlen=self.max_failures)
            while len(self._failures) > self.max_addresses:  # oldest addresses go first
                self._failures.popitem(last=False)
        self._failures.move_to_end(address)
        times.append(now)
