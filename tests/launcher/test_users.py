"""``lvi users hash-password`` and ``lvi users add``: what they write, the gateway reads."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from gateway.users import PasswordUsers, parse_file, parse_inline
from launcher.cli import main


def run(monkeypatch: pytest.MonkeyPatch, password: str, *argv: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(["users", *argv, "--stdin"])


def test_hash_password_prints_what_gateway_users_takes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, "s3cret pass", "hash-password") == 0
    hashed = capsys.readouterr().out.strip()
    assert hashed.startswith("scrypt$") and "s3cret" not in hashed
    assert (
        run(monkeypatch, "s3cret pass", "hash-password", "--user", "ann", "--principal", "team")
        == 0
    )
    entry = capsys.readouterr().out.strip()
    table = PasswordUsers(parse_inline(f"bob:{hashed},{entry}"))
    assert table.check("bob", "s3cret pass") == "bob"
    assert table.check("ann", "s3cret pass") == "team"
    assert table.check("ann", "s3cret pas") is None


def test_refusals_are_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, "", "hash-password") == 1
    assert "empty password" in capsys.readouterr().err
    assert run(monkeypatch, "pw", "hash-password", "--user", "a b") == 1
    assert "invalid username" in capsys.readouterr().err


def test_add_appends_to_a_0600_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "users"
    f.write_text("# managed by lvi users add")  # no newline at the end
    f.chmod(0o644)
    assert run(monkeypatch, "pw-ann", "add", "ann", "--principal", "alice", "--file", str(f)) == 0
    assert run(monkeypatch, "pw-bob", "add", "bob", "--file", str(f)) == 0
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    users = parse_file(f)
    assert [(u.username, u.principal) for u in users] == [("ann", "alice"), ("bob", "bob")]
    assert PasswordUsers(users).check("ann", "pw-ann") == "alice"
    capsys.readouterr()
    assert run(monkeypatch, "pw", "add", "ann", "--file", str(f)) == 1
    assert "already in" in capsys.readouterr().err
    new = tmp_path / "fresh"
    assert run(monkeypatch, "pw", "add", "carol", "--file", str(new)) == 0
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
