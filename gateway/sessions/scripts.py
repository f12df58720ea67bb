"""The Lua scripts of the session store, read from ``lua/*.lua`` (shipped as package data).

Every session script is ``prelude.lua`` (the owner check, TTL refresh and idempotency
helpers) followed by its own file; ``release.lua`` works on one idempotency key and stands
alone, and so do the ``quota_*.lua`` scripts (a principal's keys, see gateway/quotas.py). The files are read once per process, when the first store is built, never at import.
"""

from __future__ import annotations

import functools
from importlib import resources

#: The scripts that run on a whole session (KEYS = SessionKeys.all()), prelude first.
SESSION_SCRIPTS = (
    "create",
    "commit",
    "move_head",
    "add_mask",
    "append_messages",
    "delete",
    "clear_messages",
    "rename",
)


#: Scripts that stand alone (no prelude): one idempotency key, or one principal's quota keys.
STANDALONE_SCRIPTS = ("release", "quota_session", "quota_bytes", "quota_job")


def _read(name: str) -> str:
    return (resources.files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


@functools.cache
def load_scripts() -> dict[str, str]:
    """Script name -> Lua source, ready for ``redis.register_script``."""
    prelude = _read("prelude")
    scripts = {name: prelude + _read(name) for name in SESSION_SCRIPTS}
    for name in STANDALONE_SCRIPTS:
        scripts[name] = _read(name)
    return scripts
