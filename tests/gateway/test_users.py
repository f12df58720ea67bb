"""Password users (gateway/users.py): hashes, checks, and the two configuration forms."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from gateway import users as users_mod
from gateway.app import create_app
from gateway.users import PasswordHash, PasswordUsers, hash_password, parse_file, parse_inline

from .conftest import gateway_settings

# One hash per password for the whole module: scrypt is slow on purpose.
SECRET = hash_password("correct horse")
OTHER = hash_password("battery staple")


def test_hash_is_self_describing_and_salted() -> None:
    assert SECRET.startswith("scrypt$n=16384,r=8,p=1$")
    parsed = PasswordHash.parse(SECRET)
    assert str(parsed) == SECRET
    assert parsed.matches("correct horse") and not parsed.matches("correct horse ")
    assert hash_password("correct horse") != SECRET  # a new salt every time


def test_right_wrong_and_unknown() -> None:
    table = PasswordUsers(parse_inline(f"ann=alice:{SECRET},bob:{OTHER}"))
    assert len(table) == 2
    assert table.check("ann", "correct horse") == "alice"
    assert table.check("bob", "battery staple") == "bob"  # principal defaults to the name
    assert table.check("ann", "battery staple") is None
    assert table.check("bob", "correct horse") is None
    assert table.check("nobody", "correct horse") is None
    assert table.check("ANN", "correct horse") is None  # names are exact


def test_an_unknown_user_costs_one_scrypt_too(monkeypatch: pytest.MonkeyPatch) -> None:
    table = PasswordUsers(parse_inline(f"ann:{SECRET}"))
    calls: list[int] = []
    real = hashlib.scrypt

    def counting(*args: Any, **kw: Any) -> bytes:
        calls.append(kw["n"])
        return real(*args, **kw)

    monkeypatch.setattr(users_mod.hashlib, "scrypt", counting)
    assert table.check("ann", "wrong") is None
    assert table.check("nobody", "wrong") is None
    assert calls == [16384, 16384]  # the same work whether or not the name exists


@pytest.mark.anyio
async def test_verify_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    table = PasswordUsers(parse_inline(f"ann:{SECRET}"))
    seen: list[threading.Thread] = []
    real = table.check

    def check(username: str, password: str) -> str | None:
        seen.append(threading.current_thread())
        return real(username, password)

    monkeypatch.setattr(table, "check", check)
    assert await table.verify("ann", "correct horse") == "ann"
    assert seen and seen[0] is not threading.current_thread()


def test_inline_entries_keep_the_commas_of_their_hashes() -> None:
    parsed = parse_inline(f" ann = alice : {SECRET} , bob:{OTHER},")
    assert [(u.username, u.principal) for u in parsed] == [("ann", "alice"), ("bob", "bob")]
    assert str(parsed[1].password) == OTHER
    assert parse_inline("") == [] and parse_inline(" , ") == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ann", "comma-separated"),
        ("r=8,ann:" + SECRET, "comma-separated"),
        ("ann:", "entry 1 ('ann')"),
        ("ann:md5$abc", "not a 'scrypt$"),
        ("ann:scrypt$n=1000,r=8,p=1$AAAAAAAAAAA=$" + "A" * 44, "out of range"),
        ("ann:scrypt$n=1048576,r=64,p=1$AAAAAAAAAAA=$" + "A" * 44, "out of range"),
        ("ann:scrypt$n=16384,r=8$AAAAAAAAAAA=$" + "A" * 44, "n=N,r=R,p=P"),
        ("ann:scrypt$n=16384,r=8,p=1$not base64!$" + "A" * 44, "base64"),
        ("ann:scrypt$n=16384,r=8,p=1$AAAA$" + "A" * 44, "too short"),
        ("a b:" + SECRET, "invalid username"),
        ("ann=x y:" + SECRET, "invalid principal"),
    ],
)
def test_malformed_inline_entries_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match="GATEWAY_USERS") as e:
        PasswordUsers(parse_inline(spec))
    assert message in str(e.value)
    assert SECRET.split("$")[3] not in str(e.value)  # the hash is never echoed


def test_a_user_defined_twice_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "users"
    f.write_text(f"ann alice {OTHER}\n")
    with pytest.raises(ValueError, match="'ann' is defined twice"):
        PasswordUsers.from_settings(f"ann:{SECRET}", f)


def test_users_file(tmp_path: Path) -> None:
    f = tmp_path / "users"
    f.write_text(
        f"# team users\n\nann  alice  {SECRET}   # ann is on alice's team\nbob bob {OTHER}\n"
    )
    table = PasswordUsers.from_settings(f"carol:{OTHER}", str(f))
    assert len(table) == 3
    assert table.check("ann", "correct horse") == "alice"
    assert table.check("carol", "battery staple") == "carol"
    assert table.principal_of("bob") == "bob" and table.principal_of("zed") is None


def test_users_file_errors_name_the_line(tmp_path: Path) -> None:
    f = tmp_path / "users"
    f.write_text(f"ann alice {SECRET}\nbob {OTHER}\n")
    with pytest.raises(ValueError, match=r"line 2: expected 'username principal hash'"):
        parse_file(f)
    f.write_text(f"ann alice {SECRET}\n\nbob bob scrypt$nope\n")
    with pytest.raises(ValueError, match=r"users line 3: not a 'scrypt"):
        parse_file(f)
    with pytest.raises(ValueError, match="cannot read it"):
        parse_file(tmp_path / "missing")


def test_a_malformed_entry_fails_at_startup(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="GATEWAY_USERS entry 2"):
        create_app(gateway_settings("redis://127.0.0.1:9/0", users=f"ann:{SECRET},bob:x"))
    with pytest.raises(ValueError, match="GATEWAY_USERS_FILE"):
        create_app(gateway_settings("redis://127.0.0.1:9/0", users_file=str(tmp_path / "nope")))


def test_an_api_key_may_not_look_like_a_sign_in_token() -> None:
    with pytest.raises(ValueError, match="may not start with 'lvit_'"):
        create_app(gateway_settings("redis://127.0.0.1:9/0", api_keys="alice:lvit_abc"))
