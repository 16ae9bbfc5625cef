"""Texters' state (router/store/conversations.py) through its class, on a real Redis: what an arrival
says, that it queues the inbound text's deletion (as PendingDeletions would), and failing fast."""
from __future__ import annotations

import pytest

from router.store import keys
from router.store.connection import StateUnavailable, make_redis
from router.store.conversations import Conversation, ConversationStore
from router.store.deletions import PendingDeletions

SECRET = b"k" * 32
NUMBER = "+447400123456"
SID = "SM" + "c" * 32


@pytest.fixture
def store(redis_url):
    return ConversationStore(make_redis(redis_url), SECRET, first_delete_after_seconds=0)


def test_an_arrival_says_new_or_retried_where_the_texter_is_and_the_counts(store):
    store.save(NUMBER, Conversation("main", "cy"), 60)
    first = store.arrive(SID, NUMBER)
    assert first.fresh and first.conversation == Conversation("main", "cy")
    assert (first.sender_count, first.global_count) == (1, 1)
    retried = store.arrive(SID, NUMBER)
    assert not retried.fresh and (retried.sender_count, retried.global_count) == (0, 0)
    assert store.seen_before(SID) and not store.seen_before("SM" + "d" * 32)


def test_an_arrival_queues_the_inbound_texts_deletion_once(store):
    first, retried = store.arrive(SID, NUMBER), store.arrive(SID, NUMBER)
    assert first.deletion_queued and first.drain_wanted, "queued, and the caller publishes a drain"
    assert retried.deletion_queued and not retried.drain_wanted, "queued once; a drain is asked for"
    (item,) = PendingDeletions(store.client).lease(10)
    assert (item.kind, item.sid, item.attempts) == ("message", SID, 0) and item.final_at is not None


def test_junk_for_a_sid_is_never_queued(store):
    arrival = store.arrive("not-a-sid", NUMBER)
    assert arrival.fresh and not arrival.deletion_queued
    assert store.client.zcard(keys.DELETIONS_DUE) == 0


def test_redis_down_is_state_unavailable_at_once():
    down = ConversationStore(make_redis("redis://127.0.0.1:1/0"), SECRET)
    with pytest.raises(StateUnavailable):
        down.arrive(SID, NUMBER)
    assert down.seen_before(SID) is False and down.urgent_allowed(NUMBER, 3) is True and not down.ping()
