"""``lvi users``: password users of the gateway (``GATEWAY_USERS`` / ``GATEWAY_USERS_FILE``).

``hash-password`` prints a hash (or a whole ``GATEWAY_USERS`` entry) to paste into the
configuration; ``add`` appends a ``username principal hash`` line to a users file, created
with mode 0600. The hash format and the parsing are the gateway's own (:mod:`gateway.users`),
so what this writes is what the gateway reads.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import TextIO

from gateway.users import check_name, hash_password, parse_file


class UsersError(Exception):
    """A refusal to print (no ``Traceback``): bad name, empty password, duplicate user."""


def read_password(from_stdin: bool, stdin: TextIO | None = None) -> str:
    """The new password: one line of stdin, or typed twice at a prompt (not echoed)."""
    if from_stdin:
        password = (stdin or sys.stdin).readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise UsersError("the two passwords differ")
    if not password:
        raise UsersError("empty password")
    return password


def entry(password: str, username: str | None = None, principal: str | None = None) -> str:
    """The hash, or with ``username`` a ``GATEWAY_USERS`` entry ``username[=principal]:hash``."""
    hashed = hash_password(password)
    if username is None:
        return hashed
    try:
        check_name(username)
        if principal:
            check_name(principal, "principal")
    except ValueError as e:
        raise UsersError(str(e)) from None
    who = f"{username}={principal}" if principal and principal != username else username
    return f"{who}:{hashed}"


def add_user(path: Path, username: str, password: str, principal: str | None = None) -> None:
    """Append ``username principal hash`` to the users file ``path`` (made 0600; refused
    when the file already has that username or does not parse)."""
    principal = principal or username
    try:
        check_name(username)
        check_name(principal, "principal")
        existing = parse_file(path) if path.exists() else []
    except ValueError as e:
        raise UsersError(str(e)) from None
    if any(u.username == username for u in existing):
        raise UsersError(f"user {username!r} is already in {path}")
    line = f"{username} {principal} {hash_password(password)}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file too: it holds password hashes
        data = line.encode()
        if path.stat().st_size:  # start on a line of our own
            with open(path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    data = b"\n" + data
        os.write(fd, data)
    finally:
        os.close(fd)
