"""When ``lvi up`` restarts a crashed component, and when it gives up.

A component that exits after the stack is up is restarted after a delay that doubles with each
crash inside a sliding window (1 s, 2 s, 4 s, ... up to ``backoff_max``); a component that
crashes ``max_crashes`` times within ``window_s`` seconds is broken, not unlucky, and the
launcher gives up on the stack (restarting it forever would hide the error in a log stream).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass
class RestartPolicy:
    """Crash bookkeeping of one component. :meth:`crashed` says how long to wait, or None."""

    max_crashes: int = 5
    window_s: float = 60.0
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    crashes: collections.deque[float] = field(default_factory=collections.deque)

    def recent(self, now: float) -> int:
        """Crashes within the window ending at ``now``."""
        while self.crashes and now - self.crashes[0] > self.window_s:
            self.crashes.popleft()
        return len(self.crashes)

    def crashed(self, now: float) -> float | None:
        """Record a crash at ``now``; the delay before the restart, or None to give up."""
        self.crashes.append(now)
        n = self.recent(now)
        if n >= self.max_crashes:
            return None
        return float(min(self.backoff_max, self.backoff_base * 2 ** (n - 1)))
