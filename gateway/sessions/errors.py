"""What Redis and the session scripts answer -> the errors a client sees (404/409/413/503)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from redis import exceptions as redis_errors

from lvi.errors import Conflict, NotFound, PayloadTooLarge, ServiceUnavailable

from ..settings import GatewaySettings

log = logging.getLogger("lvi.gateway.sessions")


@contextlib.contextmanager
def redis_guard() -> Iterator[None]:
    """Turn Redis being unreachable into a 503 the client can act on."""
    try:
        yield
    except (redis_errors.ConnectionError, redis_errors.TimeoutError) as e:
        log.warning("redis unavailable: %s", e)
        raise ServiceUnavailable(
            "The session store (Redis) is unavailable; retry shortly.",
            code="session_store_unavailable",
            headers={"Retry-After": "2"},
        ) from None
    except redis_errors.BusyLoadingError:
        raise ServiceUnavailable(
            "The session store (Redis) is loading its data; retry shortly.",
            code="session_store_loading",
            headers={"Retry-After": "2"},
        ) from None


def raise_for_status(status: str, value: str, sid: str, settings: GatewaySettings) -> None:
    """Raise the error for a script's ``{status, value}`` answer (nothing for ``ok``)."""
    if status == "ok":
        return
    if status == "gone":
        raise NotFound(f"Session {sid} not found.", code="session_not_found")
    if status == "conflict":
        raise Conflict(
            f"The session's head moved (it is now {value or 'empty'}); reload and retry.",
            code="head_moved",
            param="If-Match",
        )
    if status == "versions_cap":
        raise Conflict(
            f"The session has reached its limit of {settings.max_versions} versions; "
            "start a new session.",
            code="version_limit",
        )
    if status == "bytes_cap":
        raise PayloadTooLarge(
            f"The session has reached its storage limit of "
            f"{settings.max_session_bytes} bytes; start a new session.",
            code="session_storage_full",
        )
    raise ServiceUnavailable(f"Unexpected store answer {status!r}.")  # pragma: no cover
