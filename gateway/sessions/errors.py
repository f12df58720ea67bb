"""What Redis and the session scripts answer -> the errors a client sees (404/409/413/503/507)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from redis import exceptions as redis_errors

from lvi.errors import (
    Conflict,
    InsufficientStorage,
    LviError,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)

from ..settings import GatewaySettings

log = logging.getLogger("lvi.gateway.sessions")


class StoreFull(InsufficientStorage):
    """507: Redis refuses writes (``maxmemory`` reached with ``noeviction``). Reads still work."""


class StoreUnavailable(ServiceUnavailable):
    """503 raised for a Redis failure; the app counts these (``lvi_gateway_store_errors_total``)."""


def is_oom(exc: BaseException) -> bool:
    """Is ``exc`` Redis refusing a write for lack of memory? (``OutOfMemoryError``, or the
    same refusal met inside a Lua script, which redis-py raises as a plain ResponseError.)"""
    if isinstance(exc, redis_errors.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, redis_errors.ResponseError) and ("OOM" in text or "maxmemory" in text)


def store_error(exc: BaseException) -> LviError:
    """The error a client sees for a Redis exception (logged here at warning level)."""
    if is_oom(exc):
        log.warning("redis refuses writes (out of memory): %s", exc)
        return StoreFull(
            "The session store is full and refuses new data; reads still work. Delete "
            "sessions you no longer need, or retry later.",
            code="store_full",
            headers={"Retry-After": "30"},
        )
    if isinstance(exc, (redis_errors.ConnectionError, redis_errors.TimeoutError)):
        log.warning("redis unavailable: %s", exc)
        return StoreUnavailable(
            "The session store (Redis) is unavailable; retry shortly.",
            code="session_store_unavailable",
            headers={"Retry-After": "2"},
        )
    if isinstance(exc, redis_errors.BusyLoadingError):
        log.warning("redis is loading its data: %s", exc)
        return StoreUnavailable(
            "The session store (Redis) is loading its data; retry shortly.",
            code="session_store_loading",
            headers={"Retry-After": "2"},
        )
    # Anything else Redis says (READONLY replica, MISCONF after a failed save, a script
    # error...): the store cannot serve this request; never a 500 with a trace.
    log.warning("redis error: %s: %s", type(exc).__name__, exc)
    return StoreUnavailable(
        "The session store (Redis) cannot serve this request now; retry shortly.",
        code="store_unavailable",
        headers={"Retry-After": "5"},
    )


@contextlib.contextmanager
def redis_guard() -> Iterator[None]:
    """Turn any Redis failure into a clear error: 507 ``store_full`` when Redis is out of
    memory, 503 when it is unreachable, loading or failing otherwise."""
    try:
        yield
    except redis_errors.RedisError as e:
        raise store_error(e) from None


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
