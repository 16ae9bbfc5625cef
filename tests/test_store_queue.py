"""The one leased queue (router/store/queue.py) behind follow-ups due and deletions, on a real Redis.

Its contract, as both users rely on it: a kick is asked for once until a worker clears it; a lease hides
what it took until the lease runs out (a worker that dies loses nothing); a member whose item is gone is
dropped and counted, not leased again and again; infos come back with their members.
"""
from __future__ import annotations

import time

import pytest
import redis

from router.store.queue import Leased, LeasedQueue

DUE, KICK, INFO = "hr:test-due", "hr:test-kick", "hr:test-info"


@pytest.fixture
def r(redis_url):
    return redis.Redis.from_url(redis_url, decode_responses=True)


def test_a_kick_is_asked_for_once_until_a_worker_clears_it(r):
    queue = LeasedQueue(r, DUE, KICK, kick_seconds=5)
    assert queue.kick() is True and queue.kick() is False, "one publish for a burst"
    assert 0 < r.ttl(KICK) <= 5, "a lost kick only delays"
    queue.unkick()
    assert queue.kick() is True


def test_a_lease_hides_members_until_it_runs_out(r):
    queue = LeasedQueue(r, DUE, KICK, kick_seconds=5, info_key=INFO, keep_seconds=3600)
    now = time.time()
    r.zadd(DUE, {"a": now - 1, "b": now - 1, "later": now + 3600})
    r.hset(INFO, "a", "x|1")
    assert queue.lease(10, 30, now) == Leased(["a", "b"], ["x|1", ""], 0)
    assert queue.lease(10, 30, now) == Leased([], [], 0), "leased: hidden"
    assert queue.lease(1, 30, now + 31).members == ["a"], "the lease ran out: due again, one at a time"
    assert queue.count() == 3 and 0 < r.ttl(DUE) <= 3600 and 0 < r.ttl(INFO) <= 3600


def test_a_member_whose_item_is_gone_is_dropped_and_counted(r):
    queue = LeasedQueue(r, DUE, KICK, kick_seconds=5, item_prefix="hr:test-item:")
    r.set("hr:test-item:kept", "1", ex=60)
    r.zadd(DUE, {"kept": 0, "gone": 0})
    assert queue.lease(10, 30, time.time()) == Leased(["kept"], [""], 1)
    assert r.zrange(DUE, 0, -1) == ["kept"]
