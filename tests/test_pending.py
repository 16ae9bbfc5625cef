"""Pending follow-ups in Redis (router/store/pending.py), on a real redis-server: each multi-key step is one
Lua script now, and these pin down what each does, so the exactly-once rules of tasks/followup.py hold:
storing once (and the 'now' kick once), claiming (lock, read, mark 'sending' only a 'pending' one),
finishing (with and without releasing the lock), settling the one a status callback names, leasing
(and dropping ids whose follow-up expired unsent), sealing the number and text, and a TTL on every key
any of them writes.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from router.store.connection import make_redis
from router.store.keys import hashed
from router.store import pending
from router.store.pending import Added, PendingFollowups

SECRET = b"secret"
KEY = b"followup-key"
NUMBER = "+447400123456"
OTHER = "+447400654321"
FROM = "+443300000111"
BODY = "Call 0808 2000 247. Reply STOP to stop."
CALLBACK = "http://h/sms/status"
A, B, C = "a" * 32, "b" * 32, "c" * 32


@pytest.fixture
def store(redis_url):
    return PendingFollowups(make_redis(redis_url), SECRET, KEY)


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
    stored = r.hgetall(f"hr:fu:{A}")
    assert set(stored) == {"sealed", "status", "by"} and stored["status"] == "pending" and stored["by"] == by
    assert NUMBER not in stored["sealed"] and "0808" not in stored["sealed"], "sealed, not readable"
    assert store.get(A) == {"to": NUMBER, "from": FROM, "body": BODY, "callback": CALLBACK,
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


def test_finish_forgets_the_number(store):
    add(store, A, at_once=True)
    add(store, B)
    store.claim(A, 1.0)
    store.finish(A, unlock=True)
    r = store.client
    assert not r.exists(f"hr:fu:{A}") and not r.exists(f"hr:fu-lock:{A}")
    assert r.zscore(pending.DUE_KEY, A) is None and r.smembers(hashed(SECRET, "fu-by", NUMBER)) == {B}
    store.claim(B, 2.0)
    store.finish(B)
    assert r.exists(f"hr:fu-lock:{B}"), "without unlock the lock stays until its holder lets go"
    assert not r.exists(f"hr:fu:{B}") and not r.exists(hashed(SECRET, "fu-by", NUMBER))
    assert_every_key_has_a_ttl(store)


def test_settle_finishes_only_the_follow_up_the_callback_names(store):
    add(store, A)
    add(store, B)                              # the same number, caught mid-send too
    store.claim(A, 1.0)
    store.claim(B, 1.0)
    assert store.settle(A) is True
    assert store.get(A) is None and store.get(B)["status"] == "sending", "B is not A's text"
    assert store.settle(A) is False, "a second callback of the same message settles nothing"
    assert store.client.zrange(pending.DUE_KEY, 0, -1) == [B]
    assert_every_key_has_a_ttl(store)


def test_lease_drops_ids_whose_follow_up_expired_unsent(store):
    add(store, A, at_once=True)
    add(store, B, at_once=True)
    store.client.delete(f"hr:fu:{A}")          # what its TTL does when no worker sent it in time
    leased = store.lease_due(limit=10)
    assert leased.ids == [B] and leased.expired == 1
    assert store.client.zrange(pending.DUE_KEY, 0, -1) == [B], "A is not dispatched again and again"
    assert store.lease_due(now=10 ** 10, limit=10) == pending.Leased([B], 0)


def test_claim_of_an_expired_follow_up_takes_it_out_of_the_due_set(store):
    add(store, A, at_once=True)
    store.client.delete(f"hr:fu:{A}")
    assert store.claim(A, 1.0) is None
    assert store.client.zcard(pending.DUE_KEY) == 0


def test_a_follow_up_sealed_with_another_key_cannot_be_read_or_sent(store, redis_url):
    add(store, A)
    other = PendingFollowups(make_redis(redis_url), SECRET, key=b"another key")
    assert "to" not in other.get(A) and other.get(A)["status"] == "pending"
    assert store.get(A)["to"] == NUMBER


def test_cancel_forgets_every_follow_up_of_the_number(store):
    add(store, A)
    add(store, B, at_once=True)
    add(store, C, to=OTHER)
    assert store.cancel_for_number(NUMBER) == 2
    assert store.get(A) is None and store.get(B) is None and store.get(C)["to"] == OTHER
    assert store.count_pending() == 1


def test_a_follow_up_written_in_plain_fields_is_never_opened(store):
    """The red team's record (issue 21, finding 3): plain fields written straight into Redis, which the
    worker used to send (an arbitrary text from the helpline's sender). It is not sealed: claimed as
    'unsealed', with no number or text for a worker to send."""
    store.client.hset(f"hr:fu:{A}", mapping={"to": NUMBER, "from": FROM, "body": BODY, "callback": CALLBACK,
                                              "status": "pending", "by": hashed(SECRET, "fu-by", NUMBER)})
    store.client.expire(f"hr:fu:{A}", 60)
    data = store.claim(A, 1.0)
    assert data["problem"] == "unsealed" and not {"to", "from", "body", "callback"} & set(data)


def test_a_forged_or_moved_ciphertext_is_unreadable(store):
    add(store, A)
    sealed = store.client.hget(f"hr:fu:{A}", "sealed")
    store.client.hset(f"hr:fu:{B}", mapping={"sealed": sealed, "status": "pending"})   # moved to another id
    store.client.hset(f"hr:fu:{C}", mapping={"sealed": "A" * 20000, "status": "pending"})  # oversized
    for fid in (B, C):
        assert store.get(fid)["problem"] == "unreadable" and "to" not in store.get(fid)


def test_rotated_keys_still_open_and_cancel_what_the_old_ones_made(redis_url):
    """FOLLOWUP_ENCRYPTION_KEY and STATE_HASH_SECRET rotated ('new,old'): a follow-up booked before is
    still sent, and a STOP after the rotation still cancels it."""
    before = PendingFollowups(make_redis(redis_url), SECRET, KEY)
    add(before, A)
    after = PendingFollowups(make_redis(redis_url), (b"new secret", SECRET), (b"new key", KEY))
    assert after.get(A)["to"] == NUMBER
    add(after, B)
    assert "to" not in before.get(B) and before.get(B)["problem"] == "unreadable", "sealed with the new key"
    assert after.cancel_for_number(NUMBER) == 2
    assert after.get(A) is None and after.get(B) is None


def test_mark_sending_never_brings_back_a_follow_up_settled_or_stopped_meanwhile(store):
    """A worker asking Twilio whether an earlier attempt went out must not resurrect a follow-up that a
    status callback settled or a stop cancelled in the meantime (it would then send it again)."""
    add(store, A)
    add(store, B)
    assert store.mark_sending(A, 5.0) is True and store.get(A)["status"] == "sending"
    store.settle(A)
    store.cancel_for_number(NUMBER)
    assert store.mark_sending(A, 6.0) is False and store.mark_sending(B, 6.0) is False
    assert not store.client.exists(f"hr:fu:{A}") and not store.client.exists(f"hr:fu:{B}")
    assert_every_key_has_a_ttl(store)
