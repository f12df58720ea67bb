"""Username/password users of the gateway: username -> (principal, scrypt hash).

A password is stored only as a self-describing scrypt hash (stdlib :func:`hashlib.scrypt`, no
extra dependency)::

    scrypt$n=16384,r=8,p=1$<salt, base64>$<hash, base64>

Users come from ``GATEWAY_USERS`` (inline, comma-separated ``username[=principal]:hash``; the
principal defaults to the username) and/or ``GATEWAY_USERS_FILE`` (one ``username principal
hash`` per line, ``#`` comments: what a Kubernetes Secret mounts). ``lvi users hash-password``
and ``lvi users add`` write both forms. A malformed entry fails at startup, naming the entry
(never echoing the hash).

Checking a password costs one scrypt whether or not the username exists (an unknown name is
checked against a fixed dummy hash), so the time of an answer does not tell which usernames
exist. The scrypt runs in a worker thread, never on the event loop, and at most
``max_concurrent`` at once: each takes ~16 MiB and tens of milliseconds of CPU.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

SCHEME = "scrypt"
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
# A hash in a config file decides how much memory one check takes: refuse absurd parameters
# at startup instead of letting one entry make every login allocate gigabytes.
MAX_MEMORY = 256 * 1024 * 1024

# Names travel in config lines (``name=principal:hash``, ``name principal hash``) and logs.
_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")


@dataclass(frozen=True)
class PasswordHash:
    """One parsed ``scrypt$n=..,r=..,p=..$salt$hash``."""

    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        """Parse a hash string (ValueError saying what is wrong, without echoing it)."""
        parts = text.strip().split("$")
        if len(parts) != 4 or parts[0] != SCHEME:
            raise ValueError("not a 'scrypt$n=N,r=R,p=P$<salt>$<hash>' string")
        params: dict[str, int] = {}
        for item in parts[1].split(","):
            key, sep, value = item.partition("=")
            if not sep or key not in ("n", "r", "p") or not value.isdigit() or key in params:
                raise ValueError("scrypt parameters must be 'n=N,r=R,p=P'")
            params[key] = int(value)
        if set(params) != {"n", "r", "p"}:
            raise ValueError("scrypt parameters must be 'n=N,r=R,p=P'")
        n, r, p = params["n"], params["r"], params["p"]
        if n < 2 or n & (n - 1) or r < 1 or p < 1 or _memory(n, r, p) > MAX_MEMORY:
            raise ValueError("scrypt parameters out of range (n a power of 2, memory <= 256 MiB)")
        try:
            salt = base64.b64decode(parts[2], validate=True)
            digest = base64.b64decode(parts[3], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("salt and hash must be base64") from None
        if len(salt) < 8 or len(digest) < 16:
            raise ValueError("salt or hash too short")
        return cls(n, r, p, salt, digest)

    def matches(self, password: str) -> bool:
        """Does ``password`` hash to this? (Blocking: one scrypt; compared in constant time.)"""
        got = _scrypt(password, self.salt, self.n, self.r, self.p, len(self.digest))
        return hmac.compare_digest(got, self.digest)

    def __str__(self) -> str:
        b64 = base64.b64encode
        params = f"n={self.n},r={self.r},p={self.p}"
        return f"{SCHEME}${params}${b64(self.salt).decode()}${b64(self.digest).decode()}"


def _memory(n: int, r: int, p: int) -> int:
    return 128 * r * (n + p + 2)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=_memory(n, r, p) + 2**20
    )


def hash_password(
    password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
) -> str:
    """A new hash string of ``password`` (random salt)."""
    if not password:
        raise ValueError("empty password")
    salt = secrets.token_bytes(SALT_BYTES)
    return str(PasswordHash(n, r, p, salt, _scrypt(password, salt, n, r, p, HASH_BYTES)))


def check_name(name: str, what: str = "username") -> str:
    """``name`` if it is a valid username or principal, else ValueError."""
    if not _NAME.match(name):
        raise ValueError(f"invalid {what} {name!r}: use 1-128 of A-Z a-z 0-9 . _ @ + -")
    return name


@dataclass(frozen=True)
class User:
    """One entry of the user table."""

    username: str
    principal: str
    password: PasswordHash


class PasswordUsers:
    """The user table: checks a username and password, answers the user's principal."""

    def __init__(self, users: list[User] | None = None, *, max_concurrent: int = 4) -> None:
        self._users: dict[str, User] = {}
        for u in users or []:
            if u.username in self._users:
                raise ValueError(f"user {u.username!r} is defined twice")
            self._users[u.username] = u
        self.max_concurrent = max_concurrent
        self._limiter: anyio.CapacityLimiter | None = None
        # What an unknown username is checked against: the same work as a real check.
        self._dummy = PasswordHash(
            DEFAULT_N, DEFAULT_R, DEFAULT_P, b"\0" * SALT_BYTES, b"\0" * HASH_BYTES
        )

    @classmethod
    def from_settings(cls, inline: str = "", file: str | Path | None = None) -> PasswordUsers:
        """Users of ``GATEWAY_USERS`` plus those of ``GATEWAY_USERS_FILE`` (ValueError naming
        the bad entry; a username in both is an error too)."""
        users = parse_inline(inline)
        if file:
            users += parse_file(Path(file))
        return cls(users)

    def __len__(self) -> int:
        return len(self._users)

    def principal_of(self, username: str) -> str | None:
        """The principal of a configured user (None when there is no such user)."""
        user = self._users.get(username)
        return user.principal if user else None

    def check(self, username: str, password: str) -> str | None:
        """The user's principal when the password matches, else None. Blocking (one scrypt,
        also for an unknown username)."""
        user = self._users.get(username)
        ok = (user.password if user else self._dummy).matches(password)
        return user.principal if user is not None and ok else None

    async def verify(self, username: str, password: str) -> str | None:
        """:meth:`check` in a worker thread, at most ``max_concurrent`` at once."""
        if self._limiter is None:  # made on first use: inside the event loop
            self._limiter = anyio.CapacityLimiter(self.max_concurrent)
        return await anyio.to_thread.run_sync(self.check, username, password, limiter=self._limiter)


def _entry(username: str, principal: str, hash_text: str, where: str) -> User:
    try:
        return User(
            check_name(username), check_name(principal, "principal"), PasswordHash.parse(hash_text)
        )
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def parse_inline(spec: str) -> list[User]:
    """Parse ``GATEWAY_USERS``: comma-separated ``username[=principal]:hash``.

    A hash has commas of its own (``n=..,r=..,p=..``): a piece without ``:`` continues the
    entry before it, since every entry has one and no hash does."""
    entries: list[str] = []
    for piece in spec.split(","):
        if ":" in piece or not piece.strip():
            entries.append(piece)
        elif entries and entries[-1].strip():
            entries[-1] += "," + piece
        else:
            raise ValueError("GATEWAY_USERS must be comma-separated username[=principal]:hash")
    users = []
    number = 0
    for text in entries:
        if not text.strip():
            continue
        number += 1
        name_part, _, hash_text = text.strip().partition(":")
        username, _, principal = name_part.partition("=")
        where = f"GATEWAY_USERS entry {number} ({username.strip()!r})"
        users.append(
            _entry(username.strip(), principal.strip() or username.strip(), hash_text, where)
        )
    return users


def parse_file(path: Path) -> list[User]:
    """Parse a users file: ``username principal hash`` per line, ``#`` comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"GATEWAY_USERS_FILE {path}: cannot read it ({e.strerror})") from None
    users = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        where = f"GATEWAY_USERS_FILE {path} line {number}"
        if len(fields) != 3:
            raise ValueError(f"{where}: expected 'username principal hash'")
        users.append(_entry(fields[0], fields[1], fields[2], where))
    return users
