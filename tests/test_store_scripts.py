"""Every Lua script of the store (router/store/scripts/NAME.lua), each run by name on a real redis-server.

The store's classes are tested through their methods elsewhere (test_pending.py, test_deletions.py,
test_store_conversations.py); here each script is pinned down by itself: what it returns, what it
writes, that whatever it writes has a TTL. A script without a test here fails
`test_every_script_has_its_own_test`.
"""
from __future__ import annotations

import time

import pytest
import redis

from router.store import keys, scripts

TESTED: set[str] = set()
DEL = [keys.DELETIONS_DUE, keys.DELETIONS_INFO]


def covers(name: str):
    """Marks a test as the test of script `name`."""
    TESTED.add(name)
    return lambda fn: fn


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    return client


def run(r, name: str, keys_: list[str], args: list) -> object:
    return scripts.load(r, name)(keys=keys_, args=args)


def assert_every_key_has_a_ttl(r):
    for key in r.keys("*"):
        assert r.ttl(key) > 0 or r.pttl(key) > 0, key


def test_every_script_has_its_own_test():
    assert set(scripts.names()) == TESTED, f"scripts without a test here: {set(scripts.names()) - TESTED}"


def test_an_include_is_put_in_place_and_runs_only_inside_a_script():
    text = scripts.source("deletion_add")
    assert "--! include" not in text and "local function now(" in text and "local function queue_deletion(" in text
    assert not scripts.INCLUDED_ONLY & set(scripts.names())


# ------------------------------------------------------------------ texts arriving
@covers("arrive")
def test_arrive_marks_the_sid_reads_the_conversation_and_counts_new_texts(r):
    now = time.time()
    k = ["hr:seen:a", "hr:conv:x", "hr:lim-replies:x", "hr:lim:replies:0"]
    r.set("hr:conv:x", '{"at": "main", "lang": "cy"}', ex=60)
    first = run(r, "arrive", k, ["1", 60, 1800, 120, f"{now:.6f}"])
    assert first == [1, '{"at": "main", "lang": "cy"}', "", 1, 1, -1], "no deletion asked for: -1"
    again = run(r, "arrive", k, ["1", 60, 1800, 120, f"{now:.6f}"])
    assert again == [0, '{"at": "main", "lang": "cy"}', "", 0, 0, -1], "a retried sid counts nothing"
    assert run(r, "arrive", k, ["0", 60, 1800, 120, f"{now:.6f}"])[0] == 1, "no sid: always new"
    assert_every_key_has_a_ttl(r)


def test_arrive_queues_the_inbound_texts_deletion_as_deletion_add_does(r):
    now = time.time()
    k = ["hr:seen:a", "hr:conv:x", "hr:lim-replies:x", "hr:lim:replies:0", *DEL, keys.DELETION_KICK]
    queue = ["m:SM1", f"{now:.6f}", 3600, 5, "60"]
    assert run(r, "arrive", k, ["1", 60, 1800, 120, f"{now:.6f}", *queue])[5] == 1, "queued; publish a drain"
    assert run(r, "arrive", k, ["1", 60, 1800, 120, f"{now:.6f}", *queue])[5] == 0, "a retry: queued once"
    assert r.zscore(keys.DELETIONS_DUE, "m:SM1") - time.time() == pytest.approx(60, abs=5)
    assert r.hget(keys.DELETIONS_INFO, "m:SM1") == f"{now:.6f}|0" and r.zcard(keys.DELETIONS_DUE) == 1
    assert run(r, "arrive", k, ["1", 60, 1800, 120, f"{now:.6f}", "", "", 3600, 5, "60"])[5] == -1
    assert_every_key_has_a_ttl(r)


def test_arrive_the_senders_window_slides_rather_than_starting_from_the_first_text(r):
    k = ["", "hr:conv:x", "hr:lim-replies:x", "hr:lim:replies:0"]
    now = time.time()
    counts = []
    for i, at in enumerate([now, now + 100, now + 1700, now + 1950]):  # a 30-minute window
        k[0] = f"hr:seen:{i}"
        counts.append(run(r, "arrive", k, ["1", 60, 1800, 120, f"{at:.6f}"])[3])
    assert counts == [1, 2, 3, 2], "30 minutes after each text, it leaves the window: the first two have"
    assert 0 < r.ttl("hr:lim-replies:x") <= 1800


@covers("urgent")
def test_urgent_answers_a_few_a_minute_then_waits(r):
    now = time.time()
    answers = [run(r, "urgent", ["hr:lim-urgent:x"], [f"{now + i / 10:.6f}", 3]) for i in range(4)]
    assert answers == [1, 1, 1, 0]
    assert run(r, "urgent", ["hr:lim-urgent:x"], [f"{now + 61:.6f}", 3]) == 1, "a minute on: answered again"
    assert_every_key_has_a_ttl(r)


# ------------------------------------------------------------------ follow-ups
@covers("followup_reserve")
def test_followup_reserve_checks_and_counts_the_limits(r):
    now, minute = int(time.time()), int(time.time()) // 60
    prefix = keys.FOLLOWUPS_IN_MINUTE_PREFIX

    def reserve(fid: str, service: str, per_number: int = 3, per_minute: int = 1):
        return run(r, "followup_reserve", [keys.followup_made(fid), f"hr:lim-fu-svc:{service}", "hr:lim-fu-num:x"],
                   [per_number, per_minute, 86400, prefix, minute, 60, now])

    assert reserve("a", "s1") == ["ok", 0]
    assert reserve("a", "s1") == ["already", 0], "the same service to the same number"
    r.set(keys.followup_made("a"), "1", ex=60)
    assert reserve("a", "s1") == ["dup", 0], "a retried webhook: kept, counted once"
    assert reserve("b", "s2") == ["ok", 1], "everyone's cap for this minute reached: a minute later"
    assert reserve("c", "s3", per_number=2) == ["per_number", 0]
    assert r.get(f"{prefix}{minute}") == "1" and r.get(f"{prefix}{minute + 1}") == "1"
    assert_every_key_has_a_ttl(r)


@covers("followup_add")
def test_followup_add_stores_once_and_kicks_once(r):
    k = [keys.followup_made("a"), keys.followup("a"), "hr:fu-by:x", keys.FOLLOWUPS_DUE, keys.FOLLOWUP_KICK]
    assert run(r, "followup_add", k, [600, "SEALED", 0, 6000, "1", 5, "a"]) == [1, 1]
    assert run(r, "followup_add", k, [600, "SEALED", 0, 6000, "1", 5, "a"]) == [0, 0], "stored once"
    k2 = [keys.followup_made("b"), keys.followup("b"), "hr:fu-by:x", keys.FOLLOWUPS_DUE, keys.FOLLOWUP_KICK]
    assert run(r, "followup_add", k2, [600, "SEALED", 0, 6000, "1", 5, "b"]) == [1, 0], "a dispatch is asked for"
    assert r.hgetall(keys.followup("a")) == {"sealed": "SEALED", "status": "pending", "by": "hr:fu-by:x"}
    assert r.smembers("hr:fu-by:x") == {"a", "b"} and r.zrange(keys.FOLLOWUPS_DUE, 0, -1) == ["a", "b"]
    assert_every_key_has_a_ttl(r)


@covers("followup_add")
def test_a_later_shorter_follow_up_never_shortens_what_a_stop_needs_to_find(r):
    """A 'tomorrow morning' follow-up (a long TTL) then a 'now' one for the same number: the number's set
    (what a stop reads) and the due set keep the longer TTL."""
    long = [keys.followup_made("m"), keys.followup("m"), "hr:fu-by:y", keys.FOLLOWUPS_DUE, keys.FOLLOWUP_KICK]
    short = [keys.followup_made("n"), keys.followup("n"), "hr:fu-by:y", keys.FOLLOWUPS_DUE, keys.FOLLOWUP_KICK]
    run(r, "followup_add", long, [126000, "SEALED", 0, 130000, "0", 5, "m"])
    run(r, "followup_add", short, [86400, "SEALED", 0, 90000, "1", 5, "n"])
    assert r.ttl("hr:fu-by:y") > 120000 and r.ttl(keys.FOLLOWUPS_DUE) > 120000
    assert_every_key_has_a_ttl(r)


def _stored(r, fid: str, status: str = "pending") -> None:
    r.hset(keys.followup(fid), mapping={"sealed": "S", "status": status, "by": "hr:fu-by:x"})
    r.expire(keys.followup(fid), 600)
    r.sadd("hr:fu-by:x", fid)
    r.expire("hr:fu-by:x", 600)
    r.zadd(keys.FOLLOWUPS_DUE, {fid: 0})
    r.expire(keys.FOLLOWUPS_DUE, 600)


@covers("followup_claim")
def test_followup_claim_locks_reads_and_marks_only_a_pending_one(r):
    _stored(r, "a")
    k = [keys.followup_lock("a"), keys.followup("a"), keys.FOLLOWUPS_DUE]
    before = run(r, "followup_claim", k, [20, "12.5", "1", "a"])
    assert dict(zip(before[::2], before[1::2]))["status"] == "pending", "the hash as it was"
    assert r.hget(keys.followup("a"), "status") == "sending" and r.hget(keys.followup("a"), "attempt_at") == "12.5"
    assert run(r, "followup_claim", k, [20, "13", "1", "a"]) is None, "locked: another worker has it"
    r.delete(keys.followup_lock("a"))
    again = run(r, "followup_claim", k, [20, "14", "1", "a"])
    assert dict(zip(again[::2], again[1::2]))["attempt_at"] == "12.5", "'sending' is left for the caller"
    gone = [keys.followup_lock("z"), keys.followup("z"), keys.FOLLOWUPS_DUE]
    r.zadd(keys.FOLLOWUPS_DUE, {"z": 0})
    assert run(r, "followup_claim", gone, [20, "1", "1", "z"]) == []
    assert not r.exists(keys.followup_lock("z")) and r.zscore(keys.FOLLOWUPS_DUE, "z") is None
    assert_every_key_has_a_ttl(r)


@covers("followup_finish")
def test_followup_finish_forgets_it_and_settling_only_one_still_there(r):
    _stored(r, "a")
    _stored(r, "b")
    r.set(keys.followup_lock("a"), "1", ex=20)
    assert run(r, "followup_finish", [keys.FOLLOWUPS_DUE, keys.followup_lock("a")], [keys.FOLLOWUP_PREFIX, "a", "0"]) == 1
    assert not r.exists(keys.followup("a")) and not r.exists(keys.followup_lock("a"))
    assert r.zrange(keys.FOLLOWUPS_DUE, 0, -1) == ["b"] and r.smembers("hr:fu-by:x") == {"b"}
    assert run(r, "followup_finish", [keys.FOLLOWUPS_DUE, ""], [keys.FOLLOWUP_PREFIX, "b", "1"]) == 1, "settled"
    r.zadd(keys.FOLLOWUPS_DUE, {"gone": 5})
    assert run(r, "followup_finish", [keys.FOLLOWUPS_DUE, ""], [keys.FOLLOWUP_PREFIX, "gone", "1"]) == 0
    assert r.zscore(keys.FOLLOWUPS_DUE, "gone") == 5, "settling leaves what it did not find to the lease"


@covers("followup_sent_remember")
def test_followup_sent_remember_keeps_a_days_sids(r):
    now = time.time()
    run(r, "followup_sent_remember", [keys.FOLLOWUP_SIDS], ["SMold", f"{now - 90_000}", 86400])
    run(r, "followup_sent_remember", [keys.FOLLOWUP_SIDS], ["SMnew", f"{now}", 86400])
    assert r.zrange(keys.FOLLOWUP_SIDS, 0, -1) == ["SMnew"], "older than a day: trimmed"
    assert_every_key_has_a_ttl(r)


@covers("followup_mark_sending")
def test_followup_mark_sending_only_while_it_exists(r):
    assert run(r, "followup_mark_sending", [keys.followup("a")], ["3.5"]) == 0
    assert not r.exists(keys.followup("a")), "never brings back a settled one without its TTL"
    _stored(r, "a")
    assert run(r, "followup_mark_sending", [keys.followup("a")], ["3.5"]) == 1
    assert r.hget(keys.followup("a"), "status") == "sending"
    assert_every_key_has_a_ttl(r)


# ------------------------------------------------------------------ deletions


@covers("deletion_add")
def test_deletion_add_queues_once_and_kicks_once(r):
    k = DEL + [keys.DELETION_KICK]
    assert run(r, "deletion_add", k, ["m:SM1", "12.0", 3600, 5, "60"]) == 1
    assert run(r, "deletion_add", k, ["m:SM2", "", 3600, 5, "0"]) == 0, "a drain is asked for already"
    first = r.zscore(keys.DELETIONS_DUE, "m:SM1")
    assert run(r, "deletion_add", k, ["m:SM1", "99.0", 3600, 5, "0"]) == 0
    assert r.zscore(keys.DELETIONS_DUE, "m:SM1") == first and r.hget(keys.DELETIONS_INFO, "m:SM1") == "12.0|0"
    assert first - time.time() == pytest.approx(60, abs=5), "due a minute on, by Redis' clock"
    assert_every_key_has_a_ttl(r)


@covers("queue_lease")
def test_queue_lease_moves_due_members_on_with_their_info(r):
    r.zadd(keys.DELETIONS_DUE, {"m:SM1": 100, "c:CA1": 200, "m:SM2": 10_000})
    r.hset(keys.DELETIONS_INFO, mapping={"m:SM1": "5.0|1"})
    out = run(r, "queue_lease", DEL, ["300", 10, "60", "", 3600])
    assert out == [["m:SM1", "c:CA1"], ["5.0|1", ""], 0]
    assert r.zscore(keys.DELETIONS_DUE, "m:SM1") == 360, "leased: due again after the lease"
    assert run(r, "queue_lease", DEL, ["20000", 1, "60", "", 3600]) == [["c:CA1"], [""], 0], \
        "at most `limit`, earliest first"
    assert_every_key_has_a_ttl(r)
    r.zadd(keys.DELETIONS_DUE, {"m:SM3": 0})
    leased = run(r, "queue_lease", DEL, ["", 10, "60", "", 3600])[0]
    assert sorted(leased) == ["c:CA1", "m:SM1", "m:SM2", "m:SM3"], "by Redis' clock, all are due by now"


def test_queue_lease_drops_members_whose_item_is_gone(r):
    _stored(r, "a")
    r.zadd(keys.FOLLOWUPS_DUE, {"expired": 0, "later": 10_000})
    out = run(r, "queue_lease", [keys.FOLLOWUPS_DUE, ""], ["100", 10, "120", keys.FOLLOWUP_PREFIX, ""])
    assert out == [["a"], [""], 1]
    assert r.zscore(keys.FOLLOWUPS_DUE, "a") == 220 and r.zscore(keys.FOLLOWUPS_DUE, "expired") is None
    assert run(r, "queue_lease", [keys.FOLLOWUPS_DUE, ""], ["100", 10, "120", keys.FOLLOWUP_PREFIX, ""]) == [[], [], 0]


@covers("deletions_done")
def test_deletions_done_forgets_them(r):
    r.zadd(keys.DELETIONS_DUE, {"m:SM1": 1, "m:SM2": 2})
    r.hset(keys.DELETIONS_INFO, mapping={"m:SM1": "|0", "m:SM2": "|0"})
    run(r, "deletions_done", DEL, ["m:SM1"])
    assert r.zrange(keys.DELETIONS_DUE, 0, -1) == ["m:SM2"] and r.hkeys(keys.DELETIONS_INFO) == ["m:SM2"]


@covers("deletion_retry")
def test_deletion_retry_only_if_still_queued(r):
    assert run(r, "deletion_retry", DEL, ["m:SM1", "30", "|1", 3600]) == 0
    r.zadd(keys.DELETIONS_DUE, {"m:SM1": 1})
    assert run(r, "deletion_retry", DEL, ["m:SM1", "30", "|1", 3600]) == 1
    assert r.zscore(keys.DELETIONS_DUE, "m:SM1") - time.time() == pytest.approx(30, abs=5)
    assert r.hget(keys.DELETIONS_INFO, "m:SM1") == "|1"
    assert_every_key_has_a_ttl(r)


@covers("deletions_drain_begin")
def test_deletions_drain_begin_clears_the_kick_and_its_own_comeback(r):
    r.set(keys.DELETION_KICK, "1", ex=5)
    r.set(keys.DELETION_NEXT, "tok", ex=30)
    run(r, "deletions_drain_begin", [keys.DELETION_KICK, keys.DELETION_NEXT], ["other"])
    assert not r.exists(keys.DELETION_KICK) and r.get(keys.DELETION_NEXT) == "tok", "not its token"
    run(r, "deletions_drain_begin", [keys.DELETION_KICK, keys.DELETION_NEXT], ["tok"])
    assert not r.exists(keys.DELETION_NEXT)


@covers("deletions_next_release")
def test_deletions_next_release_only_its_own_token(r):
    r.set(keys.DELETION_NEXT, "tok", ex=30)
    run(r, "deletions_next_release", [keys.DELETION_NEXT], ["other"])
    assert r.get(keys.DELETION_NEXT) == "tok"
    run(r, "deletions_next_release", [keys.DELETION_NEXT], ["tok"])
    assert not r.exists(keys.DELETION_NEXT)


@covers("deletions_next_schedule")
def test_deletions_next_schedule_once_until_the_earliest_is_due(r):
    k = [keys.DELETIONS_DUE, keys.DELETION_NEXT]
    assert run(r, "deletions_next_schedule", k, [300, 30, "t1"]) is None, "nothing queued"
    r.zadd(keys.DELETIONS_DUE, {"m:SM1": time.time() + 40})
    r.expire(keys.DELETIONS_DUE, 3600)
    delay = float(run(r, "deletions_next_schedule", k, [300, 30, "t1"]))
    assert 35 < delay <= 40 and r.get(keys.DELETION_NEXT) == "t1"
    assert run(r, "deletions_next_schedule", k, [300, 30, "t2"]) is None, "one come-back at a time"
    r.delete(keys.DELETION_NEXT)
    assert float(run(r, "deletions_next_schedule", k, [10, 30, "t3"])) == 10, "capped"
    assert_every_key_has_a_ttl(r)


# ------------------------------------------------------------------ bounded reads (router/store/bounded.py)
@covers("bounded_get")
def test_bounded_get_refuses_a_value_too_large_unread(r):
    r.set("router:flows:applied", "x" * 10, ex=60)
    assert run(r, "bounded_get", ["router:flows:applied"], [10]) == "x" * 10
    assert run(r, "bounded_get", ["router:flows:applied"], [9]) == -1
    assert run(r, "bounded_get", ["router:flows:nothing"], [9]) is None


@covers("bounded_hgetall")
def test_bounded_hgetall_refuses_too_many_fields_or_a_value_too_large(r):
    r.hset("router:flows:diversions", mapping={"a": "1", "b": "22"})
    assert run(r, "bounded_hgetall", ["router:flows:diversions"], [2, 2]) == ["a", "1", "b", "22"]
    assert run(r, "bounded_hgetall", ["router:flows:diversions"], [1, 2]) == -1
    assert run(r, "bounded_hgetall", ["router:flows:diversions"], [2, 1]) == -2
