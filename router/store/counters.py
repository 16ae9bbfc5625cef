"""Aggregate counters for the workers, kept in Redis so the web tier's /metrics can show them.

Workers are separate processes (often on other machines) and are not scraped themselves; a Redis hash
of plain counts is the smallest shared place. Labels are outcomes and kinds, never numbers or text.
"""
from __future__ import annotations

import logging
import threading

import redis

from router.store.state import make_redis

log = logging.getLogger("router.store.counters")
STATS_KEY = "hr:stats"
STATS_TTL_SECONDS = 90 * 24 * 3600
_where: dict[str, str] = {}
_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def configure(redis_url: str) -> None:
    """Where the counters are kept: the workers' Redis (the Celery app calls this with its settings).
    The client is made at first use, so a prefork child makes its own after the fork."""
    with _lock:
        _where["url"] = redis_url
        _clients.clear()


def _redis() -> redis.Redis:
    """A client of its own with a shorter timeout: a counter must never hold up a send or a deletion.
    RedisError (so the count is skipped and logged, never raised) until `configure` was called."""
    client = _clients.get("client")
    if client is None:
        with _lock:
            if "url" not in _where:
                raise redis.RedisError("counters not configured")
            client = _clients.setdefault("client", make_redis(_where["url"], timeout=2))
    return client


class Counter:
    def __init__(self, name: str):
        self.name = name

    def labels(self, label: str) -> "_Bound":
        return _Bound(self.name, label)

    def add(self, counts: dict[str, float], lags: list[float] = ()) -> None:
        """Several labels' increments (a batch's outcomes) in one round trip, rather than one each; with
        `lags`, the deletion lags of the batch too (see observe_deletion_lags)."""
        if not counts and not lags:
            return
        try:
            pipe = _redis().pipeline()
            for label, amount in counts.items():
                pipe.hincrbyfloat(STATS_KEY, f"{self.name}|{label}", amount)
            _add_lags(pipe, lags)
            pipe.expire(STATS_KEY, STATS_TTL_SECONDS)
            pipe.execute()
        except redis.RedisError:
            log.warning("counters %s not recorded: redis unavailable", self.name)


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
    try:
        pipe = _redis().pipeline()
        _add_lags(pipe, lags)
        pipe.expire(STATS_KEY, STATS_TTL_SECONDS)
        pipe.execute()
    except redis.RedisError:
        log.warning("deletion lag not recorded: redis unavailable")


def _add_lags(pipe, lags) -> None:
    if not lags:
        return
    for bound in LAG_BUCKETS:
        count = sum(1 for seconds in lags if seconds <= bound)
        if count:
            pipe.hincrbyfloat(STATS_KEY, f"deletion_lag_bucket|{bound}", count)
    pipe.hincrbyfloat(STATS_KEY, "deletion_lag_bucket|+Inf", len(lags))
    pipe.hincrbyfloat(STATS_KEY, "deletion_lag_sum|", sum(lags))
