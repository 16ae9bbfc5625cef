"""Aggregate counters for the workers, kept in Redis so the web tier's /metrics can show them.

Workers are separate processes (often on other machines) and are not scraped themselves; a Redis hash
of plain counts is the smallest shared place. Labels are outcomes and kinds, never numbers or text.
"""
from __future__ import annotations

import logging

import redis

from router.state import make_redis

log = logging.getLogger("tasks.metrics")
STATS_KEY = "hr:stats"
STATS_TTL_SECONDS = 90 * 24 * 3600
_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        from tasks import settings

        _client = make_redis(settings.redis_url, timeout=2)
    return _client


class Counter:
    def __init__(self, name: str):
        self.name = name

    def labels(self, label: str) -> "_Bound":
        return _Bound(self.name, label)


class _Bound:
    def __init__(self, name: str, label: str):
        self.field = f"{name}|{label}"

    def inc(self, amount: float = 1) -> None:
        try:
            pipe = _redis().pipeline()
            pipe.hincrbyfloat(STATS_KEY, self.field, amount)
            pipe.expire(STATS_KEY, STATS_TTL_SECONDS)
            pipe.execute()
        except redis.RedisError:
            log.warning("counter %s not recorded: redis unavailable", self.field)


FOLLOWUPS = Counter("followups")          # sent, retried, failed, refused, cancelled
DELETIONS = Counter("deletions")          # message, call, retry, refused, gave_up, swept_message, swept_call
LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300, 1800)


def observe_deletion_lag(seconds: float) -> None:
    observe_deletion_lags([seconds])


def observe_deletion_lags(lags: list[float]) -> None:
    """A histogram in the same hash: cumulative bucket counts, sum and count (Prometheus' shape); a
    batch of deletions is recorded in one round trip."""
    if not lags:
        return
    buckets = {bound: sum(1 for seconds in lags if seconds <= bound) for bound in LAG_BUCKETS}
    try:
        pipe = _redis().pipeline()
        for bound, count in buckets.items():
            if count:
                pipe.hincrbyfloat(STATS_KEY, f"deletion_lag_bucket|{bound}", count)
        pipe.hincrbyfloat(STATS_KEY, "deletion_lag_bucket|+Inf", len(lags))
        pipe.hincrbyfloat(STATS_KEY, "deletion_lag_sum|", sum(lags))
        pipe.expire(STATS_KEY, STATS_TTL_SECONDS)
        pipe.execute()
    except redis.RedisError:
        log.warning("deletion lag not recorded: redis unavailable")
