"""The app and its workers on a stand-in that refuses what a real UK Twilio account refuses (issue 17).

End to end (web on a real port, a real Celery worker, real Redis, the stand-in), always with a neutral
sender configured (the stand-in's Messaging Service), as a real deployment must:
- with Message Redaction, a lost answer from Twilio still gives exactly one text (the 'already sent?'
  lookup cannot use `To` once Twilio obfuscated it: tasks/followup.py);
- 21611 (the sender's queue is full: https://www.twilio.com/docs/api/errors/21611) is retried;
- a TwiML reply Twilio refuses with 21610 (https://www.twilio.com/docs/api/errors/21610) is counted;
- the sweep deletes the helpline's records only (the list calls return the whole account), Twilio's own
  answers to STOP included, a receipt-less `sent` text after the wait, and the legs a call dialled.
Cheap checks (backoff spanning days, the first DELETE's wait) are unit tests at the end.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import requests

from router.web.app import create_app
from router.dev.embedded_redis import free_port
from router.settings import Settings
from tasks import create_celery
from tests.conftest import Clock, make_settings
from tests.processes import CeleryWorker, HttpClient, WebServer, wait_until, worker_env
from tests.support import (ACCOUNT_SID, FOLLOWUP_SENDER, FOLLOWUP_SENDER_NUMBER, HELPLINE_NUMBER, METRICS_AUTH,
                           MOBILE, TOKEN, Call, new_sid, post_signed)
from tests.test_texts_e2e import metric
from tests.twilio_standin import TwilioStandin, client_for

WHEN_URL = "/voice/key?at=when:national_domestic_abuse_helpline&lang=en"   # "text me now" on a call
ELSEWHERE = "+447700900888"   # another service's number in the same Twilio account


class Stack:
    def __init__(self, redis_url: str, standin: TwilioStandin, **worker_extra: str):
        self.redis_url, self.standin = redis_url, standin
        port = free_port()
        app = create_app(make_settings(redis_url, public_base_url=f"http://127.0.0.1:{port}",
                                       api_base_url=standin.url), clock=Clock(datetime.now(timezone.utc)))
        self.web = WebServer(app, port).start()
        self.client = HttpClient(self.web.url)
        self.worker = CeleryWorker(worker_env(redis_url, standin, **worker_extra)).start()

    def text_me_now(self, caller: str = MOBILE) -> None:
        call = Call(self.client, caller=caller, base=self.web.url)
        call._post(WHEN_URL, Digits="1")
        assert "text you now" in call.text()

    def outbound(self, to: str = MOBILE) -> list[dict]:
        return [m for m in self.standin.sent_messages() if m["params"].get("To") == to]

    def metrics(self) -> str:
        return requests.get(self.web.url + "/metrics", headers=METRICS_AUTH, timeout=5).text

    def stop(self) -> None:
        self.worker.stop()
        self.web.stop()
        self.standin.stop()


@pytest.fixture
def stack(redis_url):
    built = Stack(redis_url, TwilioStandin(ACCOUNT_SID, TOKEN, step_delay=0.02).start())
    yield built
    built.stop()


@pytest.fixture
def redacted_stack(redis_url):
    """An account with Message Redaction, and a deployment that says so."""
    standin = TwilioStandin(ACCOUNT_SID, TOKEN, step_delay=0.02, message_redaction=True).start()
    built = Stack(redis_url, standin, TWILIO_MESSAGE_REDACTION="1")
    yield built
    built.stop()


def test_with_redaction_a_lost_answer_still_gives_exactly_one_text(redacted_stack):
    stack = redacted_stack
    stack.standin.inject("POST", r"/Messages\.json$", status=500, count=1, apply=True)  # created, answer lost
    stack.text_me_now()
    (message,) = wait_until(lambda: stack.outbound(), message="the text")
    wait_until(lambda: message["sid"] in stack.standin.deleted_sids, 20, message="its deletion")
    done = stack.standin.message(message["sid"])
    assert (done["content_retention"], done["address_retention"]) == ("discard", "obfuscate")
    assert done["to"] != MOBILE and done["body"] == "", "Twilio kept neither the number nor the text"
    posts = [e for e in stack.standin.request_log if e["method"] == "POST" and e["path"].endswith("/Messages.json")]
    assert len(posts) == 1, "the retry found the message its lost answer created, and sent nothing more"
    assert len(stack.outbound()) == 1


def test_the_redacted_lookup_adopts_only_a_message_no_finished_send_recorded(redis_url):
    import redis as redis_lib

    from tasks.followup import _unclaimed_in_window
    from router.store.pending import PendingFollowups

    standin = TwilioStandin(ACCOUNT_SID, TOKEN, step_delay=0.01, message_redaction=True).start()
    try:
        client = client_for(standin)
        store = PendingFollowups(redis_lib.Redis.from_url(redis_url, decode_responses=True), b"k" * 32, b"s" * 32)
        data = {"to": MOBILE, "from": FOLLOWUP_SENDER, "attempt_at": repr(time.time())}
        assert _unclaimed_in_window(client, data, store) is None, "nothing created: send"
        other = client.messages.create(to="+447400999888", messaging_service_sid=FOLLOWUP_SENDER, body="x")
        store.remember_sent(other.sid)   # another follow-up's text, whose answer its worker heard
        assert _unclaimed_in_window(client, data, store) is None
        lost = client.messages.create(to=MOBILE, messaging_service_sid=FOLLOWUP_SENDER, body="y")
        standin.wait_for_status(lost.sid, "delivered")
        assert standin.message(lost.sid)["to"] != MOBILE, "redacted: `To` would not find it"
        assert _unclaimed_in_window(client, data, store) == lost.sid
    finally:
        standin.stop()


def test_a_full_sender_queue_is_retried_not_dropped(stack):
    stack.standin.inject("POST", r"/Messages\.json$", status=400, code=21611, count=1)
    stack.text_me_now()
    (message,) = wait_until(lambda: stack.outbound(), 30, message="the text after the retry")
    codes = [e["code"] for e in stack.standin.request_log
             if e["method"] == "POST" and e["path"].endswith("/Messages.json")]
    assert codes == [21611, None]
    assert message["validity_period"] == 600


def test_a_twiml_reply_refused_with_21610_is_counted_and_logged_without_the_number(stack):
    before = metric(stack.metrics(), "helpline_message_errors_total", code="21610")
    number = "+447400777666"
    params = stack.standin.receive_text(number, HELPLINE_NUMBER, "STOP")        # Twilio opts them out
    response = post_signed(stack.client, "/sms", params, base=stack.web.url)
    replies = stack.standin.reply_with_twiml(params, response.data.decode(), stack.web.url + "/sms")
    assert [(r["status"], r["error_code"]) for r in replies] == [("failed", 21610)], "Twilio refuses our reply"
    wait_until(lambda: metric(stack.metrics(), "helpline_message_errors_total", code="21610") == before + 1,
               message="the refusal counted")
    assert all(number[1:] not in line for line in stack.worker.output), "no number in any log"


def test_the_sweep_deletes_the_helplines_records_only(redis_url):
    standin = TwilioStandin(ACCOUNT_SID, TOKEN, step_delay=0.01, sent_final_after=0.2).start()
    stack = Stack(redis_url, standin, SENT_FINAL_AFTER_SECONDS="0")   # the app's wait for a receipt
    try:
        client = client_for(standin)
        ours = [standin.add_inbound_message(MOBILE, HELPLINE_NUMBER, "left behind"),
                standin.add_inbound_message(MOBILE, FOLLOWUP_SENDER_NUMBER, "STOP")]
        ours += [m["sid"] for m in standin.messages.values()
                 if m["direction"] == "outbound-reply"]                       # Twilio's own answer to STOP
        standin.set_outcome("+447400555444", "sent")                            # no receipt will ever come
        no_receipt = client.messages.create(to="+447400555444", messaging_service_sid=FOLLOWUP_SENDER, body="x")
        standin.wait_for_status(no_receipt.sid, "sent")
        ours.append(no_receipt.sid)
        call = standin.add_call(MOBILE, HELPLINE_NUMBER, status="completed")
        leg = standin.add_call(MOBILE, "+448082000247", status="completed", parent=call)
        standin.add_phone_number(ELSEWHERE)
        theirs = [standin.add_inbound_message("+447400111000", ELSEWHERE, "someone else's"),
                  client.messages.create(to="+447400111000", from_=ELSEWHERE, body="not ours").sid]
        their_call = standin.add_call("+447400111000", ELSEWHERE, status="completed")
        wait_until(lambda: standin.message(theirs[1])["status"] == "delivered", message="their text delivered")

        create_celery(Settings(redis_url=redis_url)).send_task("tasks.history.sweep", kwargs={"min_age_seconds": 0})
        wait_until(lambda: set(ours) <= set(standin.deleted_sids) and {call, leg} <= set(standin.deleted_call_sids),
                   30, message="the helpline's records deleted")
        assert not set(theirs) & set(standin.deleted_sids), "another service's messages are left alone"
        assert their_call not in standin.deleted_call_sids
    finally:
        stack.stop()


# -- cheap checks -----------------------------------------------------------------------------------

def test_deletions_are_retried_for_fifteen_days_at_most_an_hour_apart():
    from router.settings import Settings
    from tasks.history import SWEEP_LOOKBACK, max_delete_retries
    from tasks.retry import deletion_backoff_seconds

    waits = [deletion_backoff_seconds(n) for n in range(max_delete_retries(Settings()))]
    assert max(waits) <= 3600
    assert sum(waits) >= 15 * 86400 * 0.99, "retries span the 14 days Twilio may take (errors/20009)"
    assert SWEEP_LOOKBACK.days >= 15


def test_the_first_delete_waits_the_minute_twilio_asks_for(redis_url):
    import redis as redis_lib

    from router.store import deletions

    queue = deletions.PendingDeletions(redis_lib.Redis.from_url(redis_url, decode_responses=True))
    assert queue.first_delete_after_seconds == 60.0, "a deployment's default: Twilio asks for a minute"
    sid = new_sid("SM")
    queue.add("message", sid)
    now = float(queue.client.time()[0])
    assert queue.lease(10, now=now + 30) == []
    assert [item.sid for item in queue.lease(10, now=now + 61)] == [sid]


def test_without_helpline_numbers_the_sweep_still_knows_ours_from_the_calls_that_came_in(redis_url):
    """HELPLINE_NUMBERS unset (as the contract's checks run): the numbers Twilio called us on are ours."""
    standin = TwilioStandin(ACCOUNT_SID, TOKEN, step_delay=0.01).start()
    stack = Stack(redis_url, standin, HELPLINE_NUMBERS="")
    try:
        call = standin.add_call(MOBILE, HELPLINE_NUMBER, status="completed")
        standin.add_phone_number(ELSEWHERE)
        theirs = standin.add_inbound_message("+447400111000", ELSEWHERE, "someone else's")
        Call(stack.client, caller=MOBILE, base=stack.web.url).start()     # a call comes in to the helpline
        left = standin.add_inbound_message(MOBILE, HELPLINE_NUMBER, "left behind")

        create_celery(Settings(redis_url=redis_url)).send_task("tasks.history.sweep", kwargs={"min_age_seconds": 0})
        wait_until(lambda: left in standin.deleted_sids and call in standin.deleted_call_sids, 30,
                   message="the helpline's records deleted")
        assert theirs not in standin.deleted_sids
    finally:
        stack.stop()


def test_a_text_stuck_in_twilios_queue_expires_is_counted_and_deleted(redis_url):
    """ValidityPeriod (https://www.twilio.com/docs/api/errors/30036): never delivered hours late."""
    standin = TwilioStandin(ACCOUNT_SID, TOKEN, step_delay=0.01).start()
    stack = Stack(redis_url, standin, FOLLOWUP_VALIDITY_SECONDS="1")
    try:
        before = metric(stack.metrics(), "helpline_message_errors_total", code="30036")
        standin.set_outcome(MOBILE, "queued")                      # the sender's queue never moves
        stack.text_me_now()
        (message,) = wait_until(lambda: stack.outbound(), message="the text")
        assert message["validity_period"] == 1
        wait_until(lambda: message["sid"] in standin.deleted_sids, 20, message="the expired text deleted")
        assert standin.message(message["sid"])["error_code"] == 30036
        assert metric(stack.metrics(), "helpline_message_errors_total", code="30036") == before + 1
        assert len(stack.outbound()) == 1, "an expired text is not sent again"
    finally:
        stack.stop()
