"""Start real servers for tests: any ``lvi`` component under uvicorn, and redis-server.

Every process binds 127.0.0.1 on a free port, logs to a file (shown when it fails to start),
and is killed at the end of the test session.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """A real server process. ``url`` is its base URL."""

    name: str
    args: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    ready_path: str = "/v2/health/ready"
    proc: subprocess.Popen[bytes] | None = None
    _log: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0, wait: bool = True) -> ServerProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before ready:\n{self.log_tail()}"
                )
            try:
                r = httpx.get(self.url + self.ready_path, timeout=2)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as e:
                last = repr(e)
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s ({last}):\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)
        finally:
            if self._log is not None:
                self._log.close()  # type: ignore[attr-defined]

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
        """Run ``python -m lvi <command...> --port P`` (e.g. ``worker inpaint``)."""
        port = port or free_port()
        full_env = {**self.base_env, **(env or {})}
        name = "-".join(command)
        srv = ServerProcess(
            name=name,
            args=[
                sys.executable,
                "-m",
                "lvi",
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
        exe = shutil.which("redis-server")
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

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server not ready:\n{self.log_tail()}")
