"""Follow-up texts end to end: the web app on a real port, real Celery worker processes, a real Redis
server and the local Twilio stand-in, with signed status callbacks flowing back.

Exactly one text per yes, none without one, and nothing left at Twilio afterwards.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import redis
import requests

from router.web.app import create_app
from router.dev.embedded_redis import free_port
from router.settings import Settings
from tasks import create_celery
from tests.conftest import Clock, make_settings
from tests.processes import CeleryBeat, CeleryWorker, HttpClient, WebServer, wait_until, worker_env
from tests.support import (ACCOUNT_SID, FOLLOWUP_SENDER, FOLLOWUP_SENDER_NUMBER, HELPLINE_NUMBER, LANDLINE, METRICS_AUTH, MOBILE, TOKEN, Call, Texter,
                           is_broker_key, new_sid, post_signed)
from tests.twilio_standin import TwilioStandin

OTHER_MOBILE = "+447700900555"  # not a valid range: never textable
SECOND_MOBILE = "+447400654321"
WHEN_URL = "/voice/key?at=when:national_domestic_abuse_helpline&lang=en"   # "text me now" on a call


def mobile(n: int) -> str:
    return f"+4474001{n:05d}"


class Stack:
    def __init__(self, redis_url, standin, web, clock, worker):
        self.redis_url, self.standin, self.web, self.clock, self.worker = redis_url, standin, web, clock, worker
        self.client = HttpClient(web.url)
        self.celery = create_celery(Settings(redis_url=redis_url))

    def call(self, caller=MOBILE) -> Call:
        return Call(self.client, caller=caller, base=self.web.url)

    def texter(self, sender=MOBILE) -> Texter:
        return Texter(self.client, sender=sender, base=self.web.url)

    def outbound(self, to=None):
        return [m for m in self.standin.sent_messages() if to is None or m["to"] == to]

    def dispatch_due(self):
        self.celery.send_task("tasks.followup.dispatch_due")

    def redis(self):
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def wait_deleted(self, sid, timeout=20):
        wait_until(lambda: sid in self.standin.deleted_sids, timeout, message=f"deletion of {sid}")

    def pending_followups(self) -> int:
        return self.redis().zcard("hr:fu-due")

    def celery_messages(self) -> list[str]:
        """Task names of the messages waiting in Celery's queue (while no worker takes them)."""
        import json

        return [json.loads(raw)["headers"]["task"] for raw in self.redis().lrange("celery", 0, -1)]

    def text_me_now(self, caller: str) -> None:
        """The last key press of a call that asks for a text now."""
        call = self.call(caller)
        call._post(WHEN_URL, Digits="1")
        assert "text you now" in call.text()

    def texts_per_number(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for message in self.outbound():
            counts[message["to"]] = counts.get(message["to"], 0) + 1
        return counts


@pytest.fixture
def stack(redis_url):
    standin = TwilioStandin(account_sid=ACCOUNT_SID, auth_token=TOKEN, step_delay=0.02).start()
    port = free_port()
    clock = Clock(datetime.now(timezone.utc))
    app = create_app(make_settings(redis_url, public_base_url=f"http://127.0.0.1:{port}",
                                   api_base_url=standin.url), clock=clock)
    web = WebServer(app, port).start()
    worker = CeleryWorker(worker_env(redis_url, standin)).start()
    stack = Stack(redis_url, standin, web, clock, worker)
    yield stack
    worker.stop()
    stack.worker.stop()  # a test may have replaced it
    web.stop()
    standin.stop()


def ask_for_text_after_call(stack, when_key: str, caller=MOBILE) -> Call:
    call = stack.call(caller).start().press("1")            # the 24-hour helpline: open at any time
    assert call.dialled == ["+448082000247"]
    call.dial_ends("completed")
    assert "press 2" in call.text() and "safe" in call.text()
    call.press("2")                                          # yes, it is safe to text me (asked once)
    call.press(when_key)
    assert call.hung_up
    return call


def test_voice_follow_up_now_is_sent_once_discreetly_then_deleted(stack):
    call = ask_for_text_after_call(stack, "1")
    assert "text you now" in call.text()
    (message,) = wait_until(lambda: stack.outbound(MOBILE), message="the follow-up text")
    assert message["messaging_service_sid"] == FOLLOWUP_SENDER, "from the neutral sender"
    assert "0808 2000 247" in message["body"] and "STOP" not in message["body"]
    assert "Domestic Abuse" not in message["body"] and "Refuge" not in message["body"], "discreet by default"
    assert message["content_retention"] is None and message["address_retention"] is None, \
        "no retention parameters without Message Redaction: Twilio refuses them (30029/30030)"
    assert message["validity_period"] == 600, "dropped by Twilio rather than delivered late"
    assert re.fullmatch(re.escape(f"{stack.web.url}/sms/status") + r"\?f=[0-9a-f]{32}", message["status_callback"])
    stack.wait_deleted(message["sid"])
    assert stack.standin.message(message["sid"])["from"] == FOLLOWUP_SENDER_NUMBER, "never the helpline's number"
    assert len(stack.outbound(MOBILE)) == 1
    assert stack.pending_followups() == 0
    metrics = wait_until(lambda: (lambda m: "helpline_deletion_lag_seconds_count" in m and m)(
        requests.get(stack.web.url + "/metrics", headers=METRICS_AUTH, timeout=5).text), message="the deletion lag metric")
    assert 'helpline_worker_followups_total{kind="sent"} 1.0' in metrics
    assert 'helpline_events_total{channel="voice",event="followup_scheduled",label="now"}' in metrics
    assert 'helpline_webhook_seconds_count{endpoint="/voice/key"}' in metrics
    assert 'helpline_message_status_total{status="delivered"}' in metrics
    r = stack.redis()
    for key in r.keys("*"):
        assert r.ttl(key) > 0 or is_broker_key(key), key
        assert MOBILE[1:] not in repr(r.dump(key)), key


def test_a_burst_of_now_follow_ups_publishes_a_few_dispatches_and_sends_each_exactly_once(stack):
    stack.worker.stop()
    numbers = [mobile(n) for n in range(30)]
    for number in numbers:
        stack.text_me_now(number)
    published = stack.celery_messages()
    assert 1 <= published.count("tasks.followup.dispatch_due") <= 3, published
    assert "tasks.followup.send_followup" not in published, "no publish per follow-up from the web tier"
    stack.worker = CeleryWorker(stack.worker.env, name="w2").start()
    wait_until(lambda: set(stack.texts_per_number()) == set(numbers) and stack.pending_followups() == 0, 30,
               message="every follow-up sent")
    assert set(stack.texts_per_number().values()) == {1}, "exactly one text per yes"
    sids = [m["sid"] for m in stack.outbound()]
    wait_until(lambda: set(sids) <= set(stack.standin.deleted_sids), 30, message="every text deleted")


def test_one_dispatch_sends_every_now_follow_up_however_many_are_due(stack):
    """More 'now' follow-ups than one lease takes, and only one dispatch (no beat, no further kick)."""
    from tasks.followup import DISPATCH_BATCH
    from router.store.pending import PendingFollowups, followup_id

    stack.worker.stop()
    secret = make_settings(stack.redis_url).state_key_secret()
    store = PendingFollowups(stack.redis(), secret, make_settings(stack.redis_url).followup_keys())
    numbers = [mobile(n) for n in range(DISPATCH_BATCH + 20)]
    for number in numbers:
        store.add(followup_id(secret, new_sid("CA"), "national_domestic_abuse_helpline"), to=number,
                  from_=FOLLOWUP_SENDER, body="Call 0808 2000 247.",
                  callback=f"{stack.web.url}/sms/status", send_at=datetime.now(timezone.utc), at_once=True)
    stack.dispatch_due()
    stack.worker = CeleryWorker(stack.worker.env, name="w2", concurrency=2).start()
    wait_until(lambda: set(stack.texts_per_number()) == set(numbers) and stack.pending_followups() == 0, 60,
               message="every follow-up sent")
    assert set(stack.texts_per_number().values()) == {1}
    assert stack.worker.log().count("Task tasks.followup.dispatch_due[") <= 2, "received and succeeded: one dispatch"


def test_a_follow_up_written_into_redis_unsealed_is_dropped_counted_and_never_sent(stack):
    """Issue 21, finding 3: anyone with Redis' password wrote a pending follow-up in plain fields and the
    worker sent it (any text, from the helpline's sender, past every limit). Now it is dropped unsent
    and counted as `unsealed` (the HelplineFollowupForged alert), next to a genuine one that is sent."""
    r = stack.redis()
    r.hset("hr:fu:" + "f" * 32, mapping={"to": SECOND_MOBILE, "from": HELPLINE_NUMBER, "body": "Not from us",
                                          "callback": f"{stack.web.url}/sms/status", "status": "pending"})
    r.expire("hr:fu:" + "f" * 32, 600)
    r.zadd("hr:fu-due", {"f" * 32: 0})
    stack.text_me_now(MOBILE)
    (message,) = wait_until(lambda: stack.outbound(MOBILE), message="the genuine follow-up")
    wait_until(lambda: stack.pending_followups() == 0, message="the forged one dropped")
    assert stack.outbound(SECOND_MOBILE) == [], "the forged text was never sent"
    assert not r.exists("hr:fu:" + "f" * 32)
    wait_until(lambda: 'helpline_worker_followups_total{kind="unsealed"} 1.0' in requests.get(
        stack.web.url + "/metrics", headers=METRICS_AUTH, timeout=5).text, message="the forged one counted")


def test_a_dispatch_sends_what_is_due_itself_and_hands_a_retry_to_a_task_of_its_own(stack):
    """No Celery task per follow-up: the dispatch sends over its own threads; only the one that Twilio
    asks us to retry becomes a send_followup task (with backoff), and every number gets one text."""
    stack.worker.stop()
    numbers = [mobile(n) for n in range(12)]
    for number in numbers:
        stack.text_me_now(number)
    stack.standin.inject("POST", r"/Messages\.json$", status=503, count=1)
    stack.worker = CeleryWorker(stack.worker.env, name="w2").start()
    wait_until(lambda: set(stack.texts_per_number()) == set(numbers) and stack.pending_followups() == 0, 30,
               message="every follow-up sent")
    assert set(stack.texts_per_number().values()) == {1}, "exactly one text per yes"
    handed_over = set(re.findall(r"Task tasks\.followup\.send_followup\[([^\]]+)\]", stack.worker.log()))
    assert len(handed_over) == 1, stack.worker.log()[-3000:]
    wait_until(lambda: "send_followup[" in stack.worker.log() and " succeeded in " in stack.worker.log(),
               message="the retried send to be logged as done")
    for message in stack.outbound():  # issue 21: the retry path logged the MessageSid it returned
        assert message["sid"] not in stack.worker.log(), "no identifier in the logs"
    metrics = wait_until(lambda: (lambda m: 'helpline_worker_followups_total{kind="sent"} 12.0' in m and m)(
        requests.get(stack.web.url + "/metrics", headers=METRICS_AUTH, timeout=5).text), message="the sends counted")
    assert 'helpline_worker_followups_total{kind="retried"} 1.0' in metrics


def test_voice_follow_up_later_waits_until_due(stack):
    ask_for_text_after_call(stack, "2")
    assert stack.pending_followups() == 1
    stack.dispatch_due()
    # a later follow-up for someone else, asked after the dispatch, proves the dispatch has run
    stack.clock.now = datetime.now(timezone.utc) - timedelta(minutes=61)
    ask_for_text_after_call(stack, "2", caller=SECOND_MOBILE)
    stack.dispatch_due()
    (message,) = wait_until(lambda: stack.outbound(SECOND_MOBILE), message="the due follow-up")
    assert stack.outbound(MOBILE) == [], "not due for another hour"
    stack.wait_deleted(message["sid"])
    assert stack.pending_followups() == 1


def test_sms_follow_up_later_is_sent_when_due_and_inbound_texts_are_deleted(stack):
    stack.clock.now = datetime.now(timezone.utc) - timedelta(minutes=61)
    texter = stack.texter()
    inbound = []
    for body in ["hi", "2", "8", "1"]:
        sid = stack.standin.add_inbound_message(MOBILE, HELPLINE_NUMBER, body)
        inbound.append(sid)
        reply = texter.send(body, message_sid=sid)
    assert "about an hour" in reply
    stack.dispatch_due()
    (message,) = wait_until(lambda: stack.outbound(MOBILE), message="the SMS follow-up")
    assert "0808 801 0327" in message["body"]
    stack.wait_deleted(message["sid"])
    for sid in inbound:
        stack.wait_deleted(sid)


def test_followup_morning_is_the_next_morning_in_london(stack):
    ask_for_text_after_call(stack, "3")
    due = stack.redis().zrange("hr:fu-due", 0, -1, withscores=True)[0][1]
    due_at = datetime.fromtimestamp(due, tz=timezone.utc).astimezone()
    from router.definition.hours import LONDON

    local = datetime.fromtimestamp(due, tz=LONDON)
    assert (local.hour, local.minute) == (9, 0) and 0 < due - stack.clock.now.timestamp() <= 24 * 3600
    assert due_at


@pytest.mark.parametrize("caller", [LANDLINE, "Anonymous", "+266696687", "+7378742833", "+2562533",
                                    "+8656696", "+86282452253", ""])
def test_landline_or_withheld_caller_is_never_offered_a_text(stack, caller):
    call = stack.call(caller).start().press("1").dial_ends("completed")
    assert "text" not in call.text()   # the 24-hour line again (1) and the menu (9) only
    assert call.silence().hung_up
    closed = stack.call(caller)
    closed._post("/voice/key?at=closed:galop&lang=en", Digits="2")
    assert "text" not in closed.text().replace("To hear this again", "")
    assert stack.pending_followups() == 0


def test_no_text_without_an_explicit_yes(stack):
    call = stack.call().start().press("1").dial_ends("completed")
    call.silence()                                          # silence is no: the call ends quietly
    assert call.hung_up
    call = stack.call().start().press("1").dial_ends("completed").press("7")
    assert "not one of the options" in call.text()          # only 2 says yes
    call.silence()
    assert call.hung_up
    assert stack.pending_followups() == 0
    assert stack.outbound() == []


def test_stop_cancels_a_pending_follow_up_at_once(stack):
    texter = stack.texter()
    for body in ["hi", "3", "8", "2"]:          # tomorrow morning
        texter.send(body)
    assert stack.pending_followups() == 1
    assert texter.send("STOP").startswith("OK, we will not text this phone.")
    assert stack.pending_followups() == 0
    assert [k for k in stack.redis().keys("hr:fu:*")] == []
    stack.dispatch_due()
    ask_for_text_after_call(stack, "1", caller=SECOND_MOBILE)  # proves the worker has run meanwhile
    wait_until(lambda: stack.outbound(SECOND_MOBILE), message="the other follow-up")
    assert stack.outbound(MOBILE) == []


def test_500s_and_429s_on_create_and_delete_still_end_in_one_text_and_its_deletion(stack):
    stack.standin.inject("POST", r"/Messages\.json$", status=500, count=2)
    stack.standin.inject("POST", r"/Messages\.json$", status=429, count=1, retry_after=1)
    stack.standin.inject("DELETE", r"/Messages/SM\w+\.json$", status=500, count=2)
    stack.standin.inject("DELETE", r"/Messages/SM\w+\.json$", status=429, count=1)
    ask_for_text_after_call(stack, "1")
    (message,) = wait_until(lambda: stack.outbound(MOBILE), timeout=30, message="the text")
    stack.wait_deleted(message["sid"], timeout=30)
    assert len(stack.outbound(MOBILE)) == 1


def test_a_lost_answer_from_twilio_does_not_send_twice(stack):
    # Twilio creates the message but the answer is lost (a 500 after acting on it)
    stack.standin.inject("POST", r"/Messages\.json$", status=500, count=1, apply=True)
    ask_for_text_after_call(stack, "1")
    (message,) = wait_until(lambda: stack.outbound(MOBILE), message="the text")
    stack.wait_deleted(message["sid"])
    wait_until(lambda: stack.pending_followups() == 0, message="the follow-up to be finished")
    assert len(stack.outbound(MOBILE)) == 1


def test_a_replys_status_callback_while_the_send_is_retried_does_not_settle_the_follow_up(stack):
    """The settle race: the first send fails (Twilio asks us to retry, a second or so later) and leaves
    the follow-up marked 'sending'; meanwhile the caller texts the helpline and the status callbacks of
    the app's reply to them arrive (signed, for /sms/status, to the same number), and the reply is at
    Twilio when the retry asks what was sent to that number. It is not the follow-up's text: neither
    the callbacks nor the retry may take it for one, and the follow-up is sent, exactly once."""
    stack.worker.stop()
    stack.worker = CeleryWorker(dict(stack.worker.env, TASK_RETRY_BASE_SECONDS="2")).start()
    stack.standin.inject("POST", r"/Messages\.json$", status=503, count=1)
    ask_for_text_after_call(stack, "1")
    wait_until(lambda: any(e["status"] == 503 for e in stack.standin.request_log), message="the first send to fail")
    assert stack.outbound(MOBILE) == []
    inbound = stack.standin.add_inbound_message(MOBILE, HELPLINE_NUMBER, "hi")
    stack.texter().send("hi", message_sid=inbound)
    # the TwiML reply Twilio created for that text: at Twilio, to the same number, after the failed send
    reply_sid = stack.standin.add_reply_message(HELPLINE_NUMBER, MOBILE, "Reply with a number")
    for status in ("sending", "sent"):                 # not final yet: the reply is still listed at Twilio
        response = post_signed(stack.client, "/sms/status", {"MessageSid": reply_sid, "MessageStatus": status,
                                                             "To": MOBILE, "From": HELPLINE_NUMBER},
                               base=stack.web.url)
        assert response.status_code in {200, 204}
    assert stack.outbound(MOBILE) == [] and stack.pending_followups() == 1, "the reply settled nothing"
    (message,) = wait_until(lambda: stack.outbound(MOBILE), timeout=30, message="the follow-up text")
    stack.wait_deleted(message["sid"])
    wait_until(lambda: stack.pending_followups() == 0, message="the follow-up to be finished")
    assert len(stack.outbound(MOBILE)) == 1


def test_delete_retried_while_twilio_says_20009_still_processing(stack):
    stack.standin.set_outcome(MOBILE, "sent")            # hold it in 'sent' (not final)
    ask_for_text_after_call(stack, "1")
    (message,) = wait_until(lambda: stack.outbound(MOBILE), message="the text")
    sid = message["sid"]
    wait_until(lambda: stack.standin.message(sid)["status"] == "sent", message="sent")
    # a premature status callback (as a lost/duplicated one might be) makes us try to delete early
    post_signed(stack.client, "/sms/status", {"MessageSid": sid, "MessageStatus": "delivered"},
                base=stack.web.url)
    wait_until(lambda: any(e["status"] == 409 and sid in e["path"] for e in stack.standin.request_log),
               message="a 20009 answer")
    assert sid not in stack.standin.deleted_sids
    stack.standin.advance(sid, to="delivered")
    stack.wait_deleted(sid)


def test_worker_killed_mid_send_loses_nothing_and_sends_nothing_twice(stack, tmp_path):
    stack.standin.slow("POST", r"/Messages\.json$", seconds=3, count=1)
    ask_for_text_after_call(stack, "1")
    wait_until(lambda: stack.outbound(MOBILE), message="Twilio to have the message")
    stack.worker.kill9()                                  # while its answer is still on the way
    replacement = CeleryWorker(stack.worker.env, name="w2").start()
    beat = CeleryBeat(dict(stack.worker.env, FOLLOWUP_DISPATCH_SECONDS="1"),
                      schedule_file=str(tmp_path / "beat-schedule")).start()
    try:
        stack.worker = replacement
        wait_until(lambda: stack.pending_followups() == 0, timeout=40, message="the follow-up to finish")
        (message,) = stack.outbound(MOBILE)
        stack.wait_deleted(message["sid"], timeout=30)
        assert len(stack.outbound(MOBILE)) == 1
    finally:
        beat.stop()
        replacement.stop()


def test_call_record_is_deleted_after_the_call_completes(stack):
    sid = stack.standin.add_call(MOBILE, HELPLINE_NUMBER, status="in-progress")
    call = stack.call()
    call.call_sid = sid
    call.start()
    stack.standin.set_call_status(sid, "completed")
    response = post_signed(stack.client, "/voice/status", {"CallSid": sid, "CallStatus": "completed",
                                                           "AccountSid": ACCOUNT_SID}, base=stack.web.url)
    assert response.status_code in {200, 204}
    wait_until(lambda: sid in stack.standin.deleted_call_sids, message="call record deleted")


def test_sweep_deletes_what_a_lost_callback_left(stack):
    inbound = stack.standin.add_inbound_message(MOBILE, HELPLINE_NUMBER, "left behind")
    call = stack.standin.add_call(MOBILE, HELPLINE_NUMBER, status="completed")
    live = stack.standin.add_call(SECOND_MOBILE, HELPLINE_NUMBER, status="in-progress")
    stack.celery.send_task("tasks.history.sweep", kwargs={"min_age_seconds": 0})
    wait_until(lambda: inbound in stack.standin.deleted_sids and call in stack.standin.deleted_call_sids,
               message="the sweep's deletions")
    assert live not in stack.standin.deleted_call_sids, "a call still in progress is left alone"


def test_outbound_texts_refused_without_an_account(redis_url):
    from router.web.jobs import Jobs

    jobs = Jobs(make_settings(redis_url, account_sid=None))
    assert jobs is not None  # the web tier still stores; the worker refuses (see router.twilio_rest)
    from router.twilio_rest import NotConfigured, make_client

    with pytest.raises(NotConfigured):
        make_client(make_settings(redis_url, account_sid=None))


def test_a_send_through_a_messaging_service_is_found_after_a_crash_mid_send():
    """Sent through a Messaging Service, Twilio's record has a number of the pool as From, not the MG
    SID: the 'was it already sent?' lookup must still find it, or the text would go out twice."""
    import time

    from tasks.followup import _already_sent
    from tests.twilio_standin import TwilioStandin, client_for

    standin = TwilioStandin(account_sid=ACCOUNT_SID, auth_token=TOKEN).start()
    try:
        client = client_for(standin)
        service = standin.add_messaging_service(["+447700900321"])
        attempt_at = time.time()
        sent = client.messages.create(to=MOBILE, body="a follow-up", messaging_service_sid=service)
        data = {"to": MOBILE, "from": service, "attempt_at": repr(attempt_at)}
        assert _already_sent(client, data) == sent.sid
        assert _already_sent(client, dict(data, **{"from": "MG" + "b" * 32})) is None, "another service's"
    finally:
        standin.stop()


def test_a_stop_frees_the_places_of_a_number_abroad_the_deployment_texts(redis_url):
    """FOLLOWUP_COUNTRIES allows France: a stop from a French mobile frees its same-service place just as
    a UK one's, because the place is released under the number as it was booked (not as a UK one)."""
    from datetime import datetime, timezone

    from router.engine import Followup
    from router.store.limits import Booking
    from router.web.jobs import Jobs

    jobs = Jobs(make_settings(redis_url, followup_countries=frozenset({"GB", "FR"})))
    french = "+33612345678"
    later = Followup("galop", "later", datetime.now(timezone.utc).replace(year=2099), "body")

    def book():
        return jobs.schedule_followup(to=french, from_=FOLLOWUP_SENDER, trigger=f"t{book.n}", followup=later,
                                      callback="http://x/sms/status")
    book.n = 1
    assert book() is Booking.KEPT
    book.n = 2
    assert book() is Booking.ALREADY, "the same service to the same number within the day"
    assert jobs.cancel_followups(french) == 1
    jobs.release_followup_limits(french, ["galop"])
    book.n = 3
    assert book() is Booking.KEPT, "after the stop the place is free again"
