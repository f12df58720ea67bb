"""``lvi up`` run for real in a subprocess, and the process bookkeeping its tests need.

Shared by the launcher's tests (tests/launcher) and the fault suite's crash drill
(tests/reliability/test_fault_up.py): :class:`Up` starts ``lvi up`` in its own process group
and collects its output; :func:`up_environment` gives it free ports and the test's cache
folder; :func:`pid_of` finds one of its children (to SIGKILL it); :func:`process_tree` and
:func:`alive` tell whether anything was left behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from launcher.components import COMPONENTS
from support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]


def up_environment(cache: Path, hf_home: Path) -> dict[str, str]:
    """This process's environment without any component setting, with free ports for Redis
    and every component, ``cache`` as LVI_CACHE_DIR and offline model hub."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLAVA_", "SEEM_", "GLIGEN_", "INPAINT_", "GATEWAY_", "FRONTEND_"))
        and k not in ("REDIS_URL", "LVI_PROFILE", "PYTEST_CURRENT_TEST")
    }
    env.update(
        {
            "LVI_CACHE_DIR": str(cache),
            "HF_HUB_OFFLINE": "1",
            "HF_HOME": str(hf_home),
            "LVI_REDIS_PORT": str(free_port()),
        }
    )
    for comp in COMPONENTS:
        env[comp.port_env] = str(free_port())
    return env


def marked_pids(marker: str) -> list[int]:
    """Live processes whose environment carries ``marker`` (every child of our `lvi up`)."""
    found = []
    needle = f"LVI_TEST_MARKER={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                status = (entry / "status").read_text()
                if "\nState:\tZ" not in status:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time) of a process, from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def process_tree(root: int) -> set[tuple[int, int]]:
    """(pid, start time) of ``root`` and every live descendant."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] != "Z":
                parents.setdefault(st[0], []).append(int(entry.name))
                starts[int(entry.name)] = st[2]
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in starts:
            out.add((pid, starts[pid]))
        todo += parents.get(pid, [])
    return out


def alive(procs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """The ones still running (same pid *and* start time: a reused pid does not count)."""
    left = set()
    for pid, start in procs:
        st = _stat(pid)
        if st is not None and st[1] != "Z" and st[2] == start:
            left.add((pid, start))
    return left


class Up:
    """`lvi up` in a subprocess, its output collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.marker = uuid.uuid4().hex
        self.lines: list[str] = []
        self.seen: set[tuple[int, int]] = set()  # every process of the stack we saw
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "launcher", "up", *args],
            env={**env, "LVI_TEST_MARKER": self.marker, "NO_COLOR": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like a terminal: Ctrl-C goes to this process group
            cwd=ROOT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float, after: int = 0) -> re.Match[str]:
        """The first match of ``pattern`` in the output (from line ``after`` on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, "\n".join(self.lines[after:]), re.M)
            if m:
                return m
            if self.proc.poll() is not None:
                self._reader.join(5)
                m = re.search(pattern, "\n".join(self.lines[after:]), re.M)
                if m:
                    return m
                pytest.fail(f"lvi up exited ({self.proc.returncode}) first:\n{self.output[-6000:]}")
            time.sleep(0.2)
        pytest.fail(f"no {pattern!r} after {timeout}s:\n{self.output[-6000:]}")

    def snapshot(self) -> set[tuple[int, int]]:
        """Remember the launcher's process tree (redis-server rewrites its environment, so
        the marker alone would miss it)."""
        self.seen |= process_tree(self.proc.pid)
        return self.seen

    def ctrl_c(self) -> None:
        self.snapshot()
        os.killpg(self.proc.pid, signal.SIGINT)  # what the terminal does

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for pid in {*marked_pids(self.marker), *(p for p, _ in alive(self.seen))}:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def left(self) -> set[int]:
        return {*marked_pids(self.marker), *(p for p, _ in alive(self.seen))}

    def assert_nothing_left(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.left() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not self.left(), f"processes left behind:\n{self.output[-3000:]}"


def pid_of(up: Up, name: str) -> int:
    """The pid of the child of ``lvi up`` running ``name`` (a worker or redis-server)."""
    for pid, _ in process_tree(up.proc.pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [c.decode(errors="replace") for c in cmd if c]
        if name == "redis" and words and "redis-server" in words[0]:  # it rewrites argv
            return pid
        if name != "redis" and words[-1:] == [name] and "worker" in words:
            return pid
    pytest.fail(f"no {name} process under lvi up:\n{up.output[-3000:]}")
