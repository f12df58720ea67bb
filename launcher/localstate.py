"""What ``lvi up`` keeps between runs in the cache folder: the local API key and Redis's data.

- ``$LVI_CACHE_DIR/api-key``: the key of the ``local`` principal, created once (mode 0600), so a
  key pasted into a script or the SDK keeps working after a restart of the stack.
- ``$LVI_CACHE_DIR/redis/`` (or ``LVI_REDIS_DIR``): the local Redis's append-only file, so
  sessions survive a crash of Redis or of ``lvi up`` itself. A lock file in it stops a second
  ``lvi up`` from running a second Redis over the same files.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import IO

KEY_FILE = "api-key"
LOCK_FILE = "lvi-up.lock"


def cache_dir(env: Mapping[str, str]) -> Path:
    """``LVI_CACHE_DIR`` of ``env`` (not of this process: the launcher plans for its children)."""
    return Path(env.get("LVI_CACHE_DIR") or Path.home() / ".cache" / "lvi").expanduser()


def redis_dir(env: Mapping[str, str]) -> Path:
    """Where the local Redis keeps its append-only file."""
    raw = env.get("LVI_REDIS_DIR")
    return Path(raw).expanduser() if raw else cache_dir(env) / "redis"


def local_api_key(env: Mapping[str, str]) -> tuple[str, Path]:
    """The stable local API key and its file; created (0600, never world-readable) if absent."""
    path = cache_dir(env) / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        key = path.read_text().strip()
        if key:
            return key, path
    path.parent.mkdir(parents=True, exist_ok=True)
    key = "lvi-" + secrets.token_urlsafe(24)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    # O_EXCL + mode 0600 at creation: the key is never readable by others, even for an instant.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    os.replace(tmp, path)
    return key, path


class StoreLock:
    """An exclusive lock on a Redis data folder, held for the life of ``lvi up``.

    ``flock`` locks die with the process, so a SIGKILLed launcher never leaves a stale lock.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        f = open(self.folder / LOCK_FILE, "a")  # noqa: SIM115 - held open on purpose
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        self._file = f
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
