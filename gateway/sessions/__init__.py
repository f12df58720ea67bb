"""Sessions in Redis: the store (``store.py``), its records (``records.py``), key names
(``keys.py``), Lua scripts (``lua/*.lua``, read once by :func:`load_scripts`), the Redis
client (``connection.py``) and what its answers mean to a client (``errors.py``)."""

from .connection import connect_redis
from .keys import SessionKeys
from .records import (
    IdemClaim,
    IdemReplay,
    MaskRecord,
    MessageRecord,
    SessionMeta,
    VersionRecord,
)
from .scripts import load_scripts
from .store import SessionStore

__all__ = [
    "IdemClaim",
    "IdemReplay",
    "MaskRecord",
    "MessageRecord",
    "SessionKeys",
    "SessionMeta",
    "SessionStore",
    "VersionRecord",
    "connect_redis",
    "load_scripts",
]
