"""Redis key names of a session. Every key shares the hash tag ``{<session id>}``, so a
session lives in one Redis Cluster slot and one Lua script may touch all its keys."""

from __future__ import annotations

from dataclasses import dataclass

#: What the scripts replace with the id of the version they create (stored JSON, idem results).
VID_PLACEHOLDER = '"__VID__"'


@dataclass(frozen=True)
class SessionKeys:
    """Key names of one session; all share the hash tag ``{sid}``."""

    sid: str
    prefix: str = "lvi"

    def _k(self, name: str) -> str:
        return f"{self.prefix}:{{{self.sid}}}:{name}"

    @property
    def meta(self) -> str:
        return self._k("meta")

    @property
    def versions(self) -> str:
        return self._k("versions")

    @property
    def images(self) -> str:
        return self._k("images")

    @property
    def redo(self) -> str:
        return self._k("redo")

    @property
    def masks(self) -> str:
        return self._k("masks")

    @property
    def maskdata(self) -> str:
        return self._k("maskdata")

    @property
    def messages(self) -> str:
        return self._k("messages")

    def idem(self, digest: str) -> str:
        return self._k(f"idem:{digest}")

    def all(self, idem: str | None = None) -> list[str]:
        """KEYS of every script: the seven session keys, then the idempotency key."""
        return [
            self.meta,
            self.versions,
            self.images,
            self.redo,
            self.masks,
            self.maskdata,
            self.messages,
            idem or self._k("idem:-"),
        ]
