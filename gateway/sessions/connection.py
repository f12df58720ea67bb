"""The Redis client the session store (and the rate limiter) use."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from ..settings import GatewaySettings


def connect_redis(settings: GatewaySettings) -> Any:
    """A redis-py asyncio client (or cluster client). Connects on first use, not here.

    Short timeouts and a small retry budget: when Redis is down a request answers 503 within
    about a second instead of hanging; when it comes back the pool reconnects by itself.
    """
    retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)
    common: dict[str, Any] = {
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": min(1.0, settings.redis_timeout_s),
        "retry": retry,
        "decode_responses": False,
    }
    if settings.redis_cluster:
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(
            settings.redis_url, max_connections=settings.redis_max_connections, **common
        )
    # A blocking pool: redis-py's default pool fails at once ("Too many connections") past its
    # size, which a burst of requests turned into 503s although Redis was healthy. Waiting for
    # a free connection (bounded by the command timeout) is what a burst needs.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s,
        health_check_interval=30,
        **common,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns (and closes) its pool
