"""Pending follow-ups in Redis (tasks/pending.py), on a real redis-server: each multi-key step is one
Lua script now, and these pin down what each does, so the exactly-once rules of tasks/followup.py hold:
storing once (and the 'now' kick once), claiming (lock, read, mark 'sending' only a 'pending' one),
finishing (with and without releasing the lock), settling the oldest one caught mid-send, and a TTL on
every key any of them writes.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from router.state import hashed, make_redis
from tasks import pending
from tasks.pending import Added, PendingFollowups

SECRET = b"secret"
NUMBER = "+447400123456"
OTHER = "+447400654321"
FROM = "+443300000111"
BODY = "Call 0808 2000 247. Reply STOP to stop."
CALLBACK = "http://h/sms/status"
A, B, C = "a" * 32, "b" * 32, "c" * 32


@pytest.fixture
def store(redis_url):
    return PendingFollowups(make_redis(redis_url), SECRET)


def add(store, fid, to=NUMBER, at_once=False, send_at=None):
    return store.add(fid, to=to, from_=FROM, body=BODY, callback=CALLBACK,
                     send_at=send_at or datetime.now(timezone.utc), at_once=at_once)


def assert_every_key_has_a_ttl(store):
    for key in store.client.keys("*"):
        assert store.client.ttl(key) > 0, key


def test_add_stores_once_with_ttls_and_kicks_one_dispatch(store):
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    assert add(store, A, send_at=later) == Added(True, False), "not 'now': no kick"
    assert add(store, A, send_at=later) == Added(False, False), "a duplicate trigger adds nothing"
    assert add(store, B, at_once=True) == Added(True, True)
    assert add(store, C, to=OTHER, at_once=True) == Added(True, False), "a dispatch is asked for already"
    r = store.client
    by = hashed(SECRET, "fu-by", NUMBER)
    assert r.hgetall(f"hr:fu:{A}") == {"to": NUMBER, "from": FROM, "body": BODY, "callback": CALLBACK,
                                       "status": "pending", "by": by}
    assert r.smembers(by) == {A, B}
    assert r.zscore(pending.DUE_KEY, B) == 0 and r.zscore(pending.DUE_KEY, A) == pytest.approx(later.timestamp())
    assert 3600 + pending.KEEP_AFTER_DUE_SECONDS - 5 < r.ttl(f"hr:fu:{A}") <= 3600 + pending.KEEP_AFTER_DUE_SECONDS
    assert 0 < r.ttl(pending.KICK_KEY) <= pending.KICK_SECONDS
    assert_every_key_has_a_ttl(store)
    store.begin_dispatch()
    assert add(store, "d" * 32, at_once=True).kick, "after a dispatch began, the next 'now' kicks again"


def test_claim_locks_reads_and_marks_only_a_pending_follow_up(store):
    add(store, A)
    data = store.claim(A, 100.5)
    assert data["status"] == "pending" and data["to"] == NUMBER, "as it was before marking"
    assert store.get(A)["status"] == "sending" and float(store.get(A)["attempt_at"]) == 100.5
    assert 0 < store.client.ttl(f"hr:fu-lock:{A}") <= pending.LOCK_SECONDS
    assert store.claim(A, 200.0) is False, "locked by the first claim"
    store.unlock(A)
    again = store.claim(A, 200.0)
    assert again["status"] == "sending" and float(again["attempt_at"]) == 100.5
    assert float(store.get(A)["attempt_at"]) == 100.5, "left for the caller to reconcile with Twilio"
    assert_every_key_has_a_ttl(store)


def test_claim_without_marking_and_claim_of_nothing(store):
    add(store, A)
    assert store.claim(A, 1.0, mark_sending=False)["status"] == "pending"
    assert store.get(A)["status"] == "pending"
    assert store.claim(B, 1.0) is None, "nothing pending under that id"
    assert not store.client.exists(f"hr:fu-lock:{B}"), "and no lock is left behind"


def test_finish_forgets_the_number_and_records_the_message(store):
    add(store, A, at_once=True)
    add(store, B)
    store.claim(A, 1.0)
    store.finish(A, "SM1", unlock=True)
    r = store.client
    assert not r.exists(f"hr:fu:{A}") and not r.exists(f"hr:fu-lock:{A}")
    assert r.zscore(pending.DUE_KEY, A) is None and r.smembers(hashed(SECRET, "fu-by", NUMBER)) == {B}
    assert r.get("hr:fu-sid:SM1") == A and 0 < r.ttl("hr:fu-sid:SM1") <= pending.KEEP_AFTER_DUE_SECONDS
    store.claim(B, 2.0)
    store.finish(B)
    assert r.exists(f"hr:fu-lock:{B}"), "without unlock the lock stays until its holder lets go"
    assert not r.exists(f"hr:fu:{B}") and not r.exists(hashed(SECRET, "fu-by", NUMBER))
    assert [k for k in r.keys("hr:fu-sid:*")] == ["hr:fu-sid:SM1"]
    assert_every_key_has_a_ttl(store)


def test_settle_takes_the_oldest_sending_one_then_the_smaller_id(store):
    for fid in (C, B, A):
        add(store, fid)
    add(store, "d" * 32)                       # pending, never claimed: no message can be its text
    add(store, "e" * 32, to=OTHER)
    store.claim("e" * 32, 1.0)                 # another number's: never settled by this number's texts
    for fid, attempt in ((C, 50.0), (B, 70.0), (A, 70.0)):
        store.claim(fid, attempt)
    assert store.settle_sending(NUMBER, "SM1") == C
    assert store.settle_sending(NUMBER, "SM2") == A, "a tie on attempt_at goes to the smaller id"
    assert store.settle_sending(NUMBER, "SM2") is None, "one message settles at most one"
    assert store.settle_sending(NUMBER, "SM3") == B
    assert store.settle_sending(NUMBER, "SM4") is None, "only a pending one is left"
    r = store.client
    assert r.get("hr:fu-sid:SM1") == C and r.get("hr:fu-sid:SM4") == "?"
    assert r.smembers(hashed(SECRET, "fu-by", NUMBER)) == {"d" * 32}
    assert set(r.zrange(pending.DUE_KEY, 0, -1)) == {"d" * 32, "e" * 32}
    assert store.get("e" * 32)["status"] == "sending"
    assert_every_key_has_a_ttl(store)


def test_cancel_forgets_every_follow_up_of_the_number(store):
    add(store, A)
    add(store, B, at_once=True)
    add(store, C, to=OTHER)
    assert store.cancel_for_number(NUMBER) == 2
    assert store.get(A) is None and store.get(B) is None and store.get(C)["to"] == OTHER
    assert store.count_pending() == 1
