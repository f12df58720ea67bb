"""A supervised child process (used by ``lvi up`` and by the tests' server fixtures).

Each child runs in its own process group, dies with its parent (Linux ``PR_SET_PDEATHSIG``),
and has its output pumped line by line into a :class:`LogStream`, keeping a tail for errors.
``start()`` may be called again once the process has exited (``lvi up`` restarts crashed
children).
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

import httpx

from launcher.components import redis_ping

# --- output -----------------------------------------------------------------------------------

_COLORS = ("36", "33", "35", "32", "34", "31", "96", "93")


class LogStream:
    """One readable stream for every child: ``name | line``, in colour on a terminal."""

    def __init__(self, out: IO[str], names: Iterable[str], color: bool | None = None) -> None:
        self.out = out
        self.lock = threading.Lock()
        names = list(names)
        self.width = max([len(n) for n in names] + [3])
        if color is None:
            color = bool(getattr(out, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ
        self.colors = {n: _COLORS[i % len(_COLORS)] for i, n in enumerate(names)} if color else {}

    def line(self, name: str, text: str) -> None:
        label = f"{name:<{self.width}} |"
        code = self.colors.get(name)
        if code:
            label = f"\x1b[{code}m{label}\x1b[0m"
        with self.lock:
            try:
                self.out.write(f"{label} {text}\n")
                self.out.flush()
            except (OSError, ValueError):  # closed terminal: keep supervising anyway
                pass

    def say(self, text: str) -> None:
        for part in text.splitlines() or [""]:
            self.line("lvi", part)


# --- children -----------------------------------------------------------------------------------


def _load_libc() -> Any:
    """libc, loaded in the launcher: the child may not import anything between fork and exec."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc()
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM this child if the launcher itself dies (even by SIGKILL)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """A supervised process: its own process group, output pumped into the log stream."""

    name: str
    args: list[str]
    env: dict[str, str]
    ready_url: str | None  # None: readiness is a Redis PING on ``port``
    port: int
    stage: int
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=80))
    proc: subprocess.Popen[bytes] | None = None
    ready: bool = False
    _pump: threading.Thread | None = None

    def start(self, logs: LogStream) -> None:
        self.proc = subprocess.Popen(
            self.args,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: the terminal's Ctrl-C reaches only us
            preexec_fn=_die_with_parent,
        )
        self._pump = threading.Thread(
            target=self._read, args=(logs,), name=f"log-{self.name}", daemon=True
        )
        self._pump.start()

    def _read(self, logs: LogStream) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.tail.append(text)
            logs.line(self.name, text)
        self.proc.stdout.close()

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def check_ready(self, client: httpx.Client) -> bool:
        if self.ready_url is None:
            self.ready = redis_ping(self.port)
            return self.ready
        try:
            self.ready = client.get(self.ready_url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            self.ready = False
        return self.ready

    def signal_group(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def kill_leftovers(self) -> None:
        """SIGKILL whatever is left in a dead child's process group (before a restart)."""
        if self.proc is not None and self.proc.poll() is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.ready = False

    def wait(self, timeout: float) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, sig: int = signal.SIGTERM, grace: float = 15.0) -> bool:
        """Send ``sig`` to the child's group, SIGKILL it after ``grace`` seconds; True when it
        stopped within the grace period. (``lvi up`` stops whole stages at once instead.)"""
        self.signal_group(sig)
        stopped = self.wait(grace)
        if not stopped:
            self.signal_group(signal.SIGKILL)
            self.wait(5.0)
        self.finish_logs()
        return stopped

    def finish_logs(self, timeout: float = 2.0) -> None:
        if self._pump is not None:
            self._pump.join(timeout)

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(list(self.tail)[-n:])
