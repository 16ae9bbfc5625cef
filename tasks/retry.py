"""Exponential backoff with full jitter, capped: how a task waits before asking Twilio again.

The first wait's scale is Settings.task_retry_base_seconds (TASK_RETRY_BASE_SECONDS; tests make it
small): the tasks pass it in as `base`.
"""
from __future__ import annotations

import random
from functools import lru_cache

BASE_SECONDS = 1.0   # Settings.task_retry_base_seconds' default
# Below the broker's visibility timeout (30 s): a retry waits in its worker unacknowledged, and one
# held longer than that would be handed to a second worker as well.
CAP_SECONDS = 15.0


def backoff_seconds(attempt: int, base: float = BASE_SECONDS, cap: float = CAP_SECONDS) -> float:
    """attempt 0 -> up to 1 s, 1 -> up to 2 s, ... never more than `cap` (full jitter, AWS-style)."""
    return random.uniform(base / 2, min(cap, base * (2 ** attempt)))


# Deletions Twilio refuses as not yet final (20009) are retried for as long as Twilio may take: "in rare
# cases ... up to 14 days" (https://www.twilio.com/docs/api/errors/20009). The first QUICK_ATTEMPTS use
# the backoff above (about a minute and a half in all); then waits double from a minute up to an hour.
QUICK_ATTEMPTS = 8
SLOW_CAP_SECONDS = 3600.0
DELETE_RETRY_DAYS = 15


def deletion_backoff_seconds(attempt: int, base: float = BASE_SECONDS) -> float:
    """How long a deletion waits before its next try (see above); jittered, never more than an hour."""
    if attempt < QUICK_ATTEMPTS:
        return backoff_seconds(attempt, base)
    wait = min(SLOW_CAP_SECONDS, 60.0 * 2 ** min(attempt - QUICK_ATTEMPTS, 10))
    return random.uniform(wait * 0.8, wait)


@lru_cache(maxsize=8)
def deletion_attempts_within(days: float = DELETE_RETRY_DAYS, base: float = BASE_SECONDS) -> int:
    """How many tries it takes, at the quickest pace deletion_backoff_seconds may go, before `days` have
    passed: a deletion given up after that many was retried for at least that long."""
    total, attempt = 0.0, 0
    while total < days * 86400:
        total += SLOW_CAP_SECONDS * 0.8 if attempt >= QUICK_ATTEMPTS + 6 else \
            (base / 2 if attempt < QUICK_ATTEMPTS else 60.0 * 2 ** (attempt - QUICK_ATTEMPTS) * 0.8)
        attempt += 1
    return attempt
