"""Deletions queued in Redis (router/store/deletions.py) and drained in batches by real Celery workers.

The queue on its own (real Redis): one item per sid, a kick only when no drain is asked for, leases
that a dead drain gives back, retries that count, nothing but Twilio sids and times kept, a TTL on every
key. End to end (the web app on a real port, real worker processes, the Twilio stand-in): a burst of
texts publishes a handful of drains and every text is deleted; 20009, 429 and 500 are retried until
Twilio confirms; a worker killed mid-drain loses nothing and deletes nothing twice; Redis refusing the
enqueue, or the broker refusing the kick (of a drain, or of a 'now' follow-up's dispatch), still ends in
the deletion (and the text), and the webhook always answers.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone

import pytest
import redis
import requests

from router.web.app import create_app
from router.dev.embedded_redis import free_port
from router.logs import correlation_for
from router.store.connection import make_redis
from router.store import deletions
from router.store.deletions import LEASE_SECONDS, PendingDeletions
from tests.conftest import Clock, make_settings
from tests.processes import CeleryBeat, CeleryWorker, HttpClient, WebServer, wait_until, worker_env
from tests.support import (ACCOUNT_SID, HELPLINE_NUMBER, METRICS_AUTH, MOBILE, TOKEN, Call, Texter, is_broker_key, new_sid,
                           post_signed, restricted_redis_url)
from tests.twilio_standin import TwilioStandin

DEL_KEYS = (deletions.DUE_KEY, deletions.INFO_KEY, deletions.KICK_KEY, deletions.NEXT_KEY)


def sid(prefix: str = "SM") -> str:
    return new_sid(prefix)


# ------------------------------------------------------------------------------------------ the queue
@pytest.fixture
def queue(redis_url):
    return PendingDeletions(make_redis(redis_url), first_delete_after_seconds=0)


def test_one_item_per_sid_and_a_kick_only_when_no_drain_is_asked_for(queue):
    first, second, call = sid(), sid("MM"), sid("CA")
    assert queue.add("message", first, 1000.5) is True, "the first deletion asks for a drain"
    assert queue.add("message", second) is False, "a drain is asked for already"
    assert queue.add("call", call, 1001.0) is False
    assert queue.add("message", first, 2000.0) is False and queue.count() == 3, "a repeated sid is one item"
    queue.begin_drain()
    assert queue.add("message", sid()) is True, "after a drain started, the next deletion asks again"
    assert queue.kick() is False, "and that one is asked for"
    queue.unkick()
    assert queue.kick() is True


def test_a_lease_hides_items_until_it_runs_out_so_a_dead_drain_loses_nothing(queue):
    first, call = sid(), sid("CA")
    queue.add("message", first, 1000.5)
    queue.add("call", call)
    items = queue.lease(10)
    assert {(i.kind, i.sid, i.final_at, i.attempts) for i in items} == {
        ("message", first, 1000.5, 0), ("call", call, None, 0)}
    assert queue.lease(10) == [], "leased: no other drain takes them"
    again = queue.lease(10, now=time.time() + LEASE_SECONDS + 1)
    assert {i.sid for i in again} == {first, call}, "the lease ran out: due again"
    assert queue.lease(1, now=time.time() + 3 * LEASE_SECONDS) != [] and len(
        queue.lease(10, now=time.time() + 3 * LEASE_SECONDS)) == 1, "at most `limit` at a time"


def test_a_retry_counts_its_attempts_and_done_forgets_the_item(queue, redis_url):
    queue.add("message", sid(), 1000.5)
    (item,) = queue.lease(10)
    assert queue.retry_later(item, 0.0) is True
    (item,) = queue.lease(10)
    assert item.attempts == 1 and item.final_at == 1000.5
    assert queue.retry_later(item, 60.0) is True
    assert queue.lease(10) == [], "not due for a minute"
    (item,) = queue.lease(10, now=time.time() + 61)
    assert item.attempts == 2
    queue.done(item)
    assert queue.count() == 0
    assert queue.retry_later(item, 0.0) is False, "finished meanwhile (by another drain): not queued again"
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert not r.exists(deletions.DUE_KEY) and not r.exists(deletions.INFO_KEY), "nothing left behind"


def test_one_drain_at_a_time_is_scheduled_to_come_back_for_items_not_yet_due(queue):
    assert queue.schedule_next(15) is None, "nothing queued: nothing to come back for"
    queue.add("message", sid())
    (item,) = queue.lease(10)
    queue.retry_later(item, 5.0)
    delay, token = queue.schedule_next(15)
    assert 4 < delay <= 5
    assert queue.schedule_next(15) is None, "one come-back at a time"
    queue.begin_drain("some other token")
    assert queue.schedule_next(15) is None, "only the come-back drain itself frees the way"
    queue.begin_drain(token)
    delay, _ = queue.schedule_next(2)
    assert delay == 2, "capped"


@pytest.mark.parametrize("kind, junk", [
    ("message", ""), ("message", MOBILE), ("message", "SM123"), ("message", "CA" + "0" * 32),
    ("call", "SM" + "0" * 32), ("message", "SM" + "0" * 32 + "x"), ("message", "SM" + "g" * 32),
    ("message", "SM" + "0" * 31 + "\n"), ("message", "../" + "0" * 32), ("fax", "SM" + "0" * 32),
])
def test_only_a_twilio_sid_of_the_right_kind_is_ever_queued(queue, redis_url, kind, junk):
    with pytest.raises(ValueError):
        queue.add(kind, junk)
    assert redis.Redis.from_url(redis_url).keys("hr:del*") == []
    assert queue.add("message", "SM" + "ABCDEF" * 5 + "00") is True, "hex in either case is a sid"


def test_every_deletion_key_has_a_ttl_and_holds_only_sids_and_times(client, redis_url):
    """Through the real app, with no worker: the keys as the web tier leaves them."""
    texter = Texter(client)
    texter.send("my partner reads my texts")
    texter.send("2")
    post_signed(client, "/sms/status", {"MessageSid": sid(), "MessageStatus": "delivered", "To": MOBILE})
    post_signed(client, "/voice/status", {"CallSid": sid("CA"), "CallStatus": "completed", "From": MOBILE})
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = [k for k in r.keys("*") if not is_broker_key(k)]
    assert set(DEL_KEYS[:3]) <= set(keys)
    allowed = re.compile(r"^([mc]:(SM|MM|CA)[0-9a-fA-F]{32}|[0-9.]*\|[0-9]+|[0-9.]+|1)$")
    for key in keys:
        assert 0 < r.ttl(key) <= deletions.KEEP_SECONDS, key
    for key in DEL_KEYS[:3]:
        kind = r.type(key)
        values = (r.zrange(key, 0, -1, withscores=True) if kind == "zset" else
                  r.hgetall(key).items() if kind == "hash" else [(r.get(key), "")])
        for a, b in values:
            for value in (str(a), str(b)):
                assert value == "" or allowed.match(value), (key, value)
    assert r.zcard(deletions.DUE_KEY) == 4, "two inbound texts, one sent text, one call record"


# ------------------------------------------------------------------------------------------ end to end
class Stack:
    def __init__(self, redis_url, standin, web, env):
        self.redis_url, self.standin, self.web, self.env = redis_url, standin, web, env
        self.client = HttpClient(web.url)
        self.workers: list[CeleryWorker] = []

    def start_worker(self, name="w1", **extra) -> CeleryWorker:
        worker = CeleryWorker(dict(self.env, **extra), name=name).start()
        self.workers.append(worker)
        return worker

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def queued(self) -> int:
        return self.redis().zcard(deletions.DUE_KEY)

    def inbound_texts(self, count: int) -> list[str]:
        """`count` texts from different people, each answered by the web tier (so each asks for its own
        deletion), each also known to the stand-in so it can be deleted there."""
        sids = []
        for n in range(count):
            sender = f"+4474009{n:05d}"
            message = self.standin.add_inbound_message(sender, HELPLINE_NUMBER, "hello")
            Texter(self.client, sender=sender, base=self.web.url).send("hello", message_sid=message)
            sids.append(message)
        return sids

    def celery_messages(self) -> list[str]:
        """Task names of the messages waiting in Celery's queue on Redis (nothing has taken them)."""
        return [json.loads(raw)["headers"]["task"] for raw in self.redis().lrange("celery", 0, -1)]

    def metrics(self) -> str:
        return requests.get(self.web.url + "/metrics", headers=METRICS_AUTH, timeout=5).text

    def errors(self, kind: str) -> float:
        """helpline_errors_total for `kind`: counted in this test process, so compare before and after."""
        return error_count(self.metrics(), kind)


def error_count(metrics: str, kind: str) -> float:
    found = re.search(rf'^helpline_errors_total\{{kind="{kind}"\}} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


def web_stack(redis_url: str, web_redis_url: str | None = None):
    standin = TwilioStandin(account_sid=ACCOUNT_SID, auth_token=TOKEN, step_delay=0.02).start()
    port = free_port()
    app = create_app(make_settings(web_redis_url or redis_url, public_base_url=f"http://127.0.0.1:{port}",
                                   api_base_url=standin.url), clock=Clock(datetime.now(timezone.utc)))
    web = WebServer(app, port).start()
    return Stack(redis_url, standin, web, worker_env(redis_url, standin))


@pytest.fixture
def stack(redis_url):
    stack = web_stack(redis_url)
    yield stack
    for worker in stack.workers:
        worker.stop()
    stack.web.stop()
    stack.standin.stop()


def test_a_burst_of_texts_publishes_a_few_drains_and_every_text_is_deleted(stack):
    sids = stack.inbound_texts(40)
    published = stack.celery_messages()
    assert 1 <= published.count("tasks.history.drain_deletions") <= 3, published
    assert set(published) == {"tasks.history.drain_deletions"}, "no publish per deletion"
    assert stack.queued() == 40
    stack.start_worker()
    wait_until(lambda: set(sids) <= set(stack.standin.deleted_sids), 30, message="every text deleted")
    wait_until(lambda: stack.queued() == 0, message="the queue to be empty")
    assert len(stack.standin.deleted_sids) == len(set(stack.standin.deleted_sids))
    metrics = wait_until(lambda: (lambda m: 'helpline_worker_deletions_total{kind="message"} 40.0' in m and m)(
        stack.metrics()), message="the deletions counted")
    assert "helpline_deletion_lag_seconds_count 40.0" in metrics


def test_every_kind_of_deletion_ends_deleted_at_twilio(stack):
    """An inbound text once answered, a sent follow-up once final, a call record once the call ended."""
    stack.start_worker()
    inbound = stack.standin.add_inbound_message(MOBILE, HELPLINE_NUMBER, "hi")
    Texter(stack.client, base=stack.web.url).send("hi", message_sid=inbound)
    call_sid = stack.standin.add_call(MOBILE, HELPLINE_NUMBER, status="in-progress")
    call = Call(stack.client, base=stack.web.url, call_sid=call_sid).start().press("1")
    call.dial_ends("completed").press("2").press("1")
    assert "text you now" in call.text()
    (text,) = wait_until(lambda: stack.standin.sent_messages(), message="the follow-up")
    stack.standin.set_call_status(call_sid, "completed")
    post_signed(stack.client, "/voice/status", {"CallSid": call_sid, "CallStatus": "completed"}, base=stack.web.url)
    wait_until(lambda: {inbound, text["sid"]} <= set(stack.standin.deleted_sids)
               and call_sid in stack.standin.deleted_call_sids, 20, message="all three deleted")
    wait_until(lambda: stack.queued() == 0, message="the queue to be empty")


def test_20009_while_the_call_is_still_in_progress_is_retried_until_it_ends(stack):
    stack.start_worker()
    call_sid = stack.standin.add_call(MOBILE, HELPLINE_NUMBER, status="in-progress")
    # a premature (or duplicated) status callback: Twilio still has the call in progress
    post_signed(stack.client, "/voice/status", {"CallSid": call_sid, "CallStatus": "completed"}, base=stack.web.url)
    wait_until(lambda: sum(1 for e in stack.standin.request_log
                           if e["status"] == 409 and call_sid in e["path"]) >= 2, message="20009, retried")
    assert call_sid not in stack.standin.deleted_call_sids
    stack.standin.set_call_status(call_sid, "completed")
    wait_until(lambda: call_sid in stack.standin.deleted_call_sids, 30, message="deleted once it ended")
    wait_until(lambda: stack.queued() == 0, message="the queue to be empty")
    assert 'helpline_worker_deletions_total{kind="retry"}' in stack.metrics()


def test_429_and_500_are_retried_until_twilio_confirms(stack):
    stack.standin.inject("DELETE", r"/Messages/SM\w+\.json$", status=500, count=3)
    stack.standin.inject("DELETE", r"/Messages/SM\w+\.json$", status=429, count=2, retry_after=1)
    stack.standin.inject("DELETE", r"/Calls/CA\w+\.json$", status=503, count=2)
    stack.standin.inject("DELETE", r"/Calls/CA\w+\.json$", status=429, count=1)
    sids = stack.inbound_texts(2)
    call_sid = stack.standin.add_call(MOBILE, HELPLINE_NUMBER, status="completed")
    post_signed(stack.client, "/voice/status", {"CallSid": call_sid, "CallStatus": "completed"}, base=stack.web.url)
    stack.start_worker()
    wait_until(lambda: set(sids) <= set(stack.standin.deleted_sids) and call_sid in stack.standin.deleted_call_sids,
               30, message="deleted after the faults")
    wait_until(lambda: stack.queued() == 0, message="the queue to be empty")
    answers = [e["status"] for e in stack.standin.request_log if e["method"] == "DELETE"]
    assert answers.count(500) == 3 and answers.count(429) == 3 and answers.count(503) == 2, answers
    assert answers.count(204) == 3


def test_a_deletion_twilio_refuses_is_logged_once_under_its_correlation_id_and_dropped(stack):
    stack.standin.inject("DELETE", r"/Messages/SM\w+\.json$", status=400, code=20001, count=1)
    worker = stack.start_worker()
    (refused,) = stack.inbound_texts(1)
    wait_until(lambda: any("deletion refused" in line for line in worker.output), message="the refusal logged")
    wait_until(lambda: stack.queued() == 0, message="dropped, as the per-sid task did")
    (line,) = [json.loads(line) for line in worker.output if "deletion refused" in line]
    assert line["correlation_id"] == correlation_for(refused), "the id the webhook logged under"
    assert line["event"] == "message deletion refused by Twilio: error 20001"


def test_a_worker_killed_mid_drain_loses_nothing_and_deletes_each_once(stack):
    sids = stack.inbound_texts(40)
    # the first 8 DELETEs (a batch's first round, one per thread) are done at once but answered late
    stack.standin.slow("DELETE", r"/Messages/SM\w+\.json$", seconds=3, count=8)
    worker = stack.start_worker()
    wait_until(lambda: len(stack.standin.deleted_sids) >= 8, message="a round of deletions in flight")
    worker.kill9()                                   # before any of their answers: done at Twilio, not here
    in_flight = set(stack.standin.deleted_sids)
    assert stack.queued() == 40, "the worker died before it could mark anything done"
    stack.start_worker("w2")                         # no beat: the leases run out, the drain is handed on
    wait_until(lambda: set(sids) <= set(stack.standin.deleted_sids) and stack.queued() == 0, 60,
               message="everything deleted and nothing left queued")
    deleted = stack.standin.deleted_sids
    assert sorted(deleted) == sorted(sids), "each deleted exactly once"
    asked_again = {e["path"].rsplit("/", 1)[1][:-5] for e in stack.standin.request_log
                   if e["method"] == "DELETE" and e["status"] == 404}
    assert asked_again and asked_again <= in_flight, "only those done but unconfirmed were asked again: 404"


def test_old_per_sid_tasks_still_queued_at_an_upgrade_still_delete(stack):
    from router.settings import Settings
    from tasks import create_celery

    message = stack.standin.add_inbound_message(MOBILE, HELPLINE_NUMBER, "hi")
    call_sid = stack.standin.add_call(MOBILE, HELPLINE_NUMBER, status="completed")
    celery = create_celery(Settings(redis_url=stack.redis_url))
    celery.send_task("tasks.history.delete_message", args=(message, time.time()))
    celery.send_task("tasks.history.delete_call", args=(call_sid,))
    celery.send_task("tasks.history.delete_message", args=("not a sid",))
    stack.start_worker()
    wait_until(lambda: message in stack.standin.deleted_sids and call_sid in stack.standin.deleted_call_sids,
               20, message="both deleted")
    wait_until(lambda: stack.queued() == 0, message="the queue to be empty")


# ------------------------------------------------------------------------------------------ refusals
@pytest.fixture
def restricted(redis_url):
    """restricted(*acl_rules) -> a stack whose web tier uses a Redis user without those rights."""
    made = []

    def build(*rules: str) -> Stack:
        name = f"web{len(made)}"
        stack = web_stack(redis_url, restricted_redis_url(redis_url, name, *rules))
        made.append((name, stack))
        return stack

    yield build
    for name, stack in made:
        for worker in stack.workers:
            worker.stop()
        stack.web.stop()
        stack.standin.stop()
        redis.Redis.from_url(redis_url).execute_command("ACL", "DELUSER", name)


def test_redis_refusing_the_enqueue_falls_back_to_the_per_sid_task(restricted):
    stack = restricted("-evalsha", "-eval", "-script")
    errors = stack.errors("deletion_queue")
    (message,) = stack.inbound_texts(1)          # answered all the same (statelessly, if state needs scripts)
    assert stack.celery_messages() == ["tasks.history.delete_message"]
    assert stack.errors("deletion_queue") == errors + 1
    worker = stack.start_worker()
    wait_until(lambda: message in stack.standin.deleted_sids, 20, message="deleted all the same")
    wait_until(lambda: stack.queued() == 0, message="the queue to be empty")
    assert "tasks.history.delete_message" in worker.log()


def test_the_broker_refusing_the_kicks_leaves_deletions_and_now_follow_ups_to_beat(restricted, tmp_path):
    stack = restricted("-lpush", "-rpush")
    errors = stack.errors("queue")
    (message,) = stack.inbound_texts(1)
    call = Call(stack.client, base=stack.web.url)
    call._post("/voice/key?at=when:national_domestic_abuse_helpline&lang=en", Digits="1")
    assert "text you now" in call.text(), "the follow-up is kept: the dispatcher will send it"
    assert stack.celery_messages() == [] and stack.queued() == 1
    r = stack.redis()
    assert r.zcard("hr:fu-due") == 1
    assert not r.exists(deletions.KICK_KEY) and not r.exists("hr:fu-kick"), "kicks that failed are taken back"
    assert stack.errors("queue") == errors + 1, "counted once: then the web tier pauses publishing for 2 s"
    stack.start_worker()
    beat = CeleryBeat(dict(stack.env, DELETION_DRAIN_SECONDS="1", FOLLOWUP_DISPATCH_SECONDS="1"),
                      schedule_file=str(tmp_path / "beat")).start()
    try:
        wait_until(lambda: message in stack.standin.deleted_sids, 20, message="deleted by beat's drain")
        (text,) = wait_until(lambda: stack.standin.sent_messages(), 20, message="sent by beat's dispatcher")
        wait_until(lambda: text["sid"] in stack.standin.deleted_sids, 20, message="and deleted")
        assert len(stack.standin.sent_messages()) == 1
    finally:
        beat.stop()


def test_with_redis_down_deletions_are_asked_for_and_every_webhook_still_answers(app_at, redis_server):
    client = app_at()
    errors = error_count(client.get("/metrics", headers=METRICS_AUTH).get_data(as_text=True), "deletion_queue")
    redis_server.stop()
    try:
        reply = Texter(client).send("hello")
        assert "999" in reply
        for path, params in (("/sms/status", {"MessageSid": sid(), "MessageStatus": "delivered"}),
                             ("/voice/status", {"CallSid": sid("CA"), "CallStatus": "completed"})):
            assert post_signed(client, path, params).status_code in {200, 204}
        metrics = client.get("/metrics", headers=METRICS_AUTH).get_data(as_text=True)
        assert error_count(metrics, "deletion_queue") > errors, "counted, and nothing raised"
    finally:
        redis_server.start()


def test_a_deletion_asked_for_while_redis_and_the_broker_are_down_is_queued_once_redis_answers(app_at, redis_server):
    """A final status callback in the seconds a Redis restart or a Sentinel failover takes: neither the
    queue nor the broker takes its deletion, which the web process keeps and queues with its next one
    (it used to wait for the history sweep, 5-10 minutes; tests/test_sentinel_failover.py)."""
    client = app_at()
    final = sid()
    redis_server.stop()
    try:
        assert post_signed(client, "/sms/status", {"MessageSid": final, "MessageStatus": "delivered"}
                           ).status_code in {200, 204}
    finally:
        redis_server.start()
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    senders = iter(f"+4474005{n:05d}" for n in range(1000))

    def queued() -> bool:
        Texter(client, sender=next(senders)).send("hello")       # a later deletion, which reaches Redis
        return r.zscore(deletions.DUE_KEY, f"m:{final}") is not None

    wait_until(queued, 15, interval=0.25, message="the deletion asked for while Redis was down to be queued")
