"""Issue 12 end to end: texts and follow-ups that never give a person away and cannot be turned against
them. The web app on a real port, a real Celery worker process, a real Redis server and the Twilio
stand-in, with signed webhooks and status callbacks.

One stack for the module (starting a worker costs seconds); every test uses numbers of its own, so the
per-number limits of one test never meet another's.
"""
from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta, timezone

import pytest
import redis
import requests
import yaml

from router.web.app import create_app
from router.dev.embedded_redis import free_port
from router.definition.flowfile import load_flows
from router.store.keys import hashed
from router.settings import Settings
from tasks import create_celery
from router.store.pending import followup_id
from tests.conftest import FLOWS, Clock, copy_flows, make_settings
from tests.processes import CeleryWorker, HttpClient, WebServer, wait_until, worker_env
from tests.support import (ACCOUNT_SID, FOLLOWUP_SENDER, FOLLOWUP_SENDER_NUMBER, HELPLINE_NUMBER, METRICS_AUTH, TOKEN,
                           Call, Texter, new_sid, parse, post_signed)
from tests.test_stopwords import STOP_FORMS
from tests.twilio_standin import TwilioStandin

STOPPED_EN = "OK, we will not text this phone.\nIn danger? Call 999."
STOPPED_CY = "Iawn, fyddwn ni ddim yn anfon neges i'r rhif hwn.\nPerygl? Ffoniwch 999."
WHEN_URL = "/voice/key?at=when:{service}&lang={lang}"
SERVICE_24H = "national_domestic_abuse_helpline"
_numbers = itertools.count(1)


def new_mobile() -> str:
    """A valid UK mobile no other test of this module uses."""
    return f"+4474009{next(_numbers):05d}"


class Stack:
    def __init__(self, redis_url, standin, web, clock, worker):
        self.redis_url, self.standin, self.web, self.clock, self.worker = redis_url, standin, web, clock, worker
        self.client = HttpClient(web.url)
        self.celery = create_celery(Settings(redis_url=redis_url))
        self.secret = make_settings(redis_url).state_key_secret()

    def redis(self):
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def texter(self, number: str) -> Texter:
        return Texter(self.client, sender=number, base=self.web.url)

    def call(self, number: str) -> Call:
        return Call(self.client, caller=number, base=self.web.url)

    def ask_text(self, number: str, digit: str, service: str = SERVICE_24H, lang: str = "en") -> Call:
        """The last key press of a call asking for a text: 1 now, 2 in about an hour, 3 tomorrow morning."""
        call = self.call(number)
        call._post(WHEN_URL.format(service=service, lang=lang), Digits=digit)
        return call

    def pending_for(self, number: str) -> int:
        return self.redis().scard(hashed(self.secret, "fu-by", number))

    def outbound(self, to: str) -> list[dict]:
        return [m for m in self.standin.sent_messages() if m["to"] == to]

    def dispatch(self) -> None:
        self.celery.send_task("tasks.followup.dispatch_due")

    def prove_worker_ran(self) -> None:
        """A 'now' follow-up for a fresh number, sent: every dispatch published before it has run."""
        control = new_mobile()
        self.ask_text(control, "1")
        wait_until(lambda: self.outbound(control), 20, message="the control follow-up")

    def holds_number(self, number: str) -> list[str]:
        """Keys whose name or value holds the number in any form (the privacy promise)."""
        r, digits = self.redis(), number[1:]
        national = "0" + number[3:]
        return [key for key in r.keys("*") if digits in key or national in key
                or digits in repr(r.dump(key)) or national in repr(r.dump(key))]

    def metrics(self) -> str:
        return requests.get(self.web.url + "/metrics", headers=METRICS_AUTH, timeout=5).text


def metric(text: str, name: str, **labels) -> float:
    """The value of one series in Prometheus text (0 if absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.fixture(scope="module")
def stack(redis_server):
    redis.Redis.from_url(redis_server.url).flushall()
    standin = TwilioStandin(account_sid=ACCOUNT_SID, auth_token=TOKEN, step_delay=0.02).start()
    port = free_port()
    clock = Clock(datetime.now(timezone.utc))
    app = create_app(make_settings(redis_server.url, public_base_url=f"http://127.0.0.1:{port}",
                                   api_base_url=standin.url), clock=clock)
    web = WebServer(app, port).start()
    worker = CeleryWorker(worker_env(redis_server.url, standin), name="i12").start()
    yield Stack(redis_server.url, standin, web, clock, worker)
    worker.stop()
    web.stop()
    standin.stop()


@pytest.fixture(autouse=True)
def clock_now(stack):
    stack.clock.now = datetime.now(timezone.utc)
    yield
    stack.clock.now = datetime.now(timezone.utc)


def book_by_text(stack: Stack, number: str, welsh: bool = False) -> Texter:
    """Galop by text, 'text me later' (8), tomorrow morning (2): pending, not due for hours."""
    texter = stack.texter(number)
    for body in (["hi", "9"] if welsh else ["hi"]) + ["3", "8", "2"]:
        texter.send(body)
    assert ("am 9yb" if welsh else "at 9am") in texter.replies[-1]
    assert stack.pending_for(number) == 1
    return texter


# ------------------------------------------------------------------ 1. stop, however typed
@pytest.mark.parametrize("form", STOP_FORMS)
def test_every_stop_form_cancels_a_pending_follow_up_and_never_answers_with_the_menu(stack, form):
    number = new_mobile()
    texter = book_by_text(stack, number)
    assert stack.holds_number(number) == [], "even while pending, the number is kept only sealed"
    reply = texter.send(form)
    welsh = form.upper().startswith(("STOPIO", "DIWEDD", "CANSLO", "PEIDIWCH", "DIM ", "DAD"))
    assert reply.startswith(STOPPED_CY if welsh else STOPPED_EN), reply
    assert not re.search(r"^\d ", reply, re.M), "never the menu"
    assert stack.pending_for(number) == 0
    assert stack.holds_number(number) == [], "the number is gone from Redis"
    if form == "STOP":  # asked again after a stop: a new text
        assert "text you now" in stack.ask_text(number, "1", service="galop").text()


def test_stopped_follow_ups_are_never_sent_by_the_worker(stack):
    stack.clock.now = datetime.now(timezone.utc) - timedelta(minutes=61)   # asked an hour ago: due now
    stopped = [new_mobile() for _ in range(3)]
    for number, form in zip(stopped, ["STOP please", "ＳＴＯＰ", "don't text me"]):
        texter = stack.texter(number)
        for body in ["hi", "1", "8", "1"]:       # the 24-hour line, 'text me later', in about an hour
            texter.send(body)
        assert stack.pending_for(number) == 1
        assert texter.send(form).startswith(STOPPED_EN)
    stack.clock.now = datetime.now(timezone.utc)
    stack.dispatch()
    stack.prove_worker_ran()
    assert [m for m in stack.standin.sent_messages() if m["to"] in stopped] == []


def test_21610_from_twilio_is_final_cancels_everything_for_the_number_and_is_not_retried(stack):
    number = new_mobile()
    # The person once texted STOP to the follow-up sender at Twilio (Twilio opted them out of its
    # Messaging Service itself)...
    stack.standin.add_inbound_message(number, FOLLOWUP_SENDER_NUMBER, "STOP")
    book_by_text(stack, number)                                            # ...has a text for the morning
    before = metric(stack.metrics(), "helpline_worker_followups_total", kind="unsubscribed")
    assert "text you now" in stack.ask_text(number, "1").text()            # ...and asks for one now
    wait_until(lambda: stack.pending_for(number) == 0, 20, message="the follow-ups to be cancelled")
    posts = [e for e in stack.standin.request_log
             if e["method"] == "POST" and e["path"].endswith("/Messages.json") and e["form"].get("To") == number]
    assert [(e["status"], e["code"]) for e in posts] == [(400, 21610)], "refused once, never retried"
    assert stack.outbound(number) == []
    stack.prove_worker_ran()
    assert len([e for e in stack.standin.request_log if e["form"].get("To") == number]) == 1
    wait_until(lambda: metric(stack.metrics(), "helpline_worker_followups_total", kind="unsubscribed")
               == before + 1, message="the opt-out counted")
    assert stack.holds_number(number) == []


# ------------------------------------------------------------------ 2. replies to a follow-up
def service_words() -> set[str]:
    flows = load_flows(FLOWS, lint=False)
    words = {"abuse", "helpline", "refuge", "domestic", "cam-drin", "llinell"}
    for service in flows.services.values():
        words |= {name.lower() for name in service.name.values()}
        words.add(service.number)
    return words


def test_a_text_to_the_helpline_from_a_phone_sent_a_follow_up_is_answered_as_any_other(stack):
    """Caller ID is not proof (issue 18): what the helpline number answers never depends on what was sent."""
    number = new_mobile()
    stack.ask_text(number, "1")
    (message,) = wait_until(lambda: stack.outbound(number), message="the follow-up")
    wait_until(lambda: message["sid"] in stack.standin.deleted_sids, message="its deletion")
    stranger = stack.texter(new_mobile())
    texter = stack.texter(number)
    for body in ["Who is this?", "1", "hello", "CYMRAEG"]:
        assert texter.send(body) == stranger.send(body), body


def test_free_text_gets_the_automatic_note_and_the_menu_never_not_one_of_the_options(stack):
    texter = stack.texter(new_mobile())
    first = texter.send("he hit me again what do i do")
    assert first.index("999") < first.index("Automatic: nobody reads texts") < first.index("1 Domestic abuse")
    texter.send("7")
    reply = texter.send("help me please")
    assert "not one of the options" not in reply
    assert "Automatic: nobody reads texts" in reply and "1 Domestic abuse" in reply and "999" in reply


# ------------------------------------------------------------------ 4. limits
def test_repeated_requests_from_one_number_produce_one_text_and_each_sounds_like_the_first(stack):
    number = new_mobile()
    before = metric(stack.metrics(), "helpline_limits_total", limit="followup_same_service")
    calls = [stack.ask_text(number, "1") for _ in range(25)]
    assert "text you now" in calls[0].text()
    for call in calls[1:]:
        assert call.heard == calls[0].heard, "asking again sounds exactly like booking (issue 18)"
        assert call.hung_up
    (message,) = wait_until(lambda: stack.outbound(number), message="the one text")
    stack.prove_worker_ran()
    assert len(stack.outbound(number)) == 1
    assert metric(stack.metrics(), "helpline_limits_total", limit="followup_same_service") == before + 24


def test_one_number_gets_at_most_three_follow_ups_a_day_whatever_the_services(stack):
    number = new_mobile()
    before = metric(stack.metrics(), "helpline_limits_total", limit="followup_per_number")
    services = ["national_domestic_abuse_helpline", "mens_advice_line", "galop", "karma_nirvana"]
    heard = [stack.ask_text(number, "3", service=s).text() for s in services]
    assert all("at 9am" in h for h in heard[:3]), heard
    assert "cannot send a text this time" in heard[3] and "oh eight hundred" in heard[3], heard[3]
    assert stack.pending_for(number) == 3
    assert metric(stack.metrics(), "helpline_limits_total", limit="followup_per_number") == before + 1
    assert number not in stack.metrics()


def test_a_senders_burst_is_answered_fully_then_with_999_only_then_not_at_all_but_urgent_texts_still_are(stack):
    number = new_mobile()
    assert "at 9am" in stack.ask_text(number, "3").text()                # a text pending, asked by call
    before = stack.metrics()

    def send(body: str) -> list[str]:
        response = post_signed(stack.client, "/sms", {
            "MessageSid": new_sid("SM"), "AccountSid": ACCOUNT_SID, "From": number, "To": HELPLINE_NUMBER,
            "Body": body, "NumMedia": "0"}, base=stack.web.url)
        assert response.status_code == 200
        return ["".join(m.itertext()) for m in parse(response.data).findall("Message")]

    answers = [send("hello") for _ in range(42)]
    full, advice, silent = answers[:30], answers[30:40], answers[40:]
    assert "1 Domestic abuse" in full[0][0], answers
    assert all(a == ["Sorry, we did not understand. Reply with a number from the list, or 0 for the menu."]
               for a in full[1:]), answers
    assert all(len(a) == 1 and a[0].startswith("In danger? Call 999") and "Domestic" not in a[0] for a in advice)
    assert all(a == [] for a in silent), "a faked sender is not flooded"
    stop = send("STOP")
    assert len(stop) == 1 and "999" in stop[0], "past the limits a stop is still answered, a few a minute..."
    assert stack.pending_for(number) == 0, "...and acted on"
    after = stack.metrics()
    assert metric(after, "helpline_limits_total", limit="reply_sender_burst") == \
        metric(before, "helpline_limits_total", limit="reply_sender_burst") + 10
    assert metric(after, "helpline_limits_total", limit="reply_sender_silenced") >= \
        metric(before, "helpline_limits_total", limit="reply_sender_silenced") + 2


def test_every_limit_appears_in_metrics_without_any_number(stack):
    text = stack.metrics()
    for name in ("followup_same_service", "followup_per_number", "followup_global", "reply_sender_burst",
                 "reply_sender_silenced", "reply_global"):
        assert f'helpline_limits_total{{limit="{name}"}}' in text, name
    # a number on its own, not digits inside a float such as 1.7654471234567e+09 (a timestamp gauge)
    assert not re.search(r"(?<![\d.])\+?447\d{9}(?!\d)", text)


def test_past_the_global_cap_follow_ups_are_delayed_and_counted_never_refused(stack, tmp_path):
    """61 faked caller IDs in a second used to use up the cap and a real caller was refused (issue 18)."""
    folder = copy_flows(tmp_path)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["limits"]["followups_per_minute"] = 2
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    port = free_port()
    app = create_app(make_settings(stack.redis_url, public_base_url=f"http://127.0.0.1:{port}",
                                   api_base_url=stack.standin.url, flows_dir=folder), clock=stack.clock)
    web = WebServer(app, port).start()
    try:
        stack.redis().delete(*stack.redis().keys("hr:lim:fu:*") or ["-"])
        before = metric(stack.metrics(), "helpline_limits_total", limit="followup_global")
        callers = [new_mobile() for _ in range(3)]
        heard, due = [], []
        for number in callers:
            call = Call(HttpClient(web.url), caller=number, base=web.url)
            call._post(WHEN_URL.format(service=SERVICE_24H, lang="en"), Digits="3")
            heard.append(call.text())
            due.append(stack.redis().zscore("hr:fu-due", followup_id(stack.secret, call.call_sid, SERVICE_24H)))
        assert all("at 9am" in h for h in heard), heard
        assert [stack.pending_for(number) for number in callers] == [1, 1, 1], "nobody refused"
        assert due[0] == due[1] and 60 <= due[2] - due[0] <= 120, ("the third a minute later", due)
        assert metric(stack.metrics(), "helpline_limits_total", limit="followup_global") == before + 1
    finally:
        web.stop()


# ------------------------------------------------------------------ 5. cancel by key on every call
def test_key_8_on_any_call_cancels_a_pending_follow_up_unannounced_and_in_the_same_words_either_way(stack):
    number = new_mobile()
    stack.clock.now = datetime.now(timezone.utc) - timedelta(minutes=61)
    assert "about an hour" in stack.ask_text(number, "2").text()           # due now
    stack.clock.now = datetime.now(timezone.utc)
    call = stack.call(number).start()
    assert call.heard == stack.call(new_mobile()).start().heard, "the greeting offers nothing (issue 18)"
    call.press("8")
    assert call.heard[0] == "Done. We will not text this phone." and "Domestic abuse, press 1" in call.text()
    assert stack.pending_for(number) == 0 and stack.holds_number(number) == []
    stack.dispatch()
    stack.prove_worker_ran()
    assert stack.outbound(number) == []
    assert "about an hour" in stack.ask_text(number, "2").text(), "asked again after cancelling: a new text"
    stack.call(number).start().press("8")
    again = stack.call(number).start().press("8")
    assert again.heard == call.heard, "nothing pending: the very same words"


# ------------------------------------------------------------------ 6. the sender
@pytest.mark.parametrize("sender", [FOLLOWUP_SENDER, "+447700900999", "Info"])
def test_follow_ups_come_from_the_configured_sender(stack, sender):
    if sender.startswith("+"):
        stack.standin.add_phone_number(sender)   # a UK mobile of the account's own
    port = free_port()
    app = create_app(make_settings(stack.redis_url, public_base_url=f"http://127.0.0.1:{port}",
                                   api_base_url=stack.standin.url, followup_sender=sender), clock=stack.clock)
    web = WebServer(app, port).start()
    try:
        number = new_mobile()
        call = Call(HttpClient(web.url), caller=number, base=web.url)
        call._post(WHEN_URL.format(service=SERVICE_24H, lang="en"), Digits="1")
        (message,) = wait_until(lambda: stack.outbound(number), message="the follow-up")
        if sender.startswith("MG"):
            assert message["messaging_service_sid"] == sender and "From" not in message["params"]
        else:
            assert message["from"] == sender and message["messaging_service_sid"] is None
        assert message["from"] != HELPLINE_NUMBER
        # whoever holds the phone and replies gets an automated number's answer, never the menu
        reply_to = {"MessagingServiceSid": sender, "To": "+447700900123"} if sender.startswith("MG") else {"To": sender}
        for body in ["Who is this?", "MENU", "1", "CYMRAEG"]:
            response = post_signed(HttpClient(web.url), "/sms", {
                "MessageSid": new_sid("SM"), "AccountSid": ACCOUNT_SID, "From": number, "Body": body,
                "NumMedia": "0", **reply_to}, base=web.url)
            reply = "".join(parse(response.data).find("Message").itertext())
            assert reply.startswith("This is an automated number"), (body, reply)
            assert not [w for w in service_words() if w in reply.lower()] and "menu" not in reply.lower()
    finally:
        web.stop()


# ------------------------------------------------------------------ 7. Welsh on every text path
def test_welsh_paths_stay_welsh(stack):
    number = new_mobile()
    texter = book_by_text(stack, number, welsh=True)
    menu = texter.send("CYMRAEG")  # the booking ended the conversation; nothing about it is kept
    assert "1 Cam-drin domestig" in menu and "Domestic" not in menu
    assert texter.send("DIWEDD").startswith(STOPPED_CY)
    assert stack.pending_for(number) == 0
    caller = new_mobile()
    assert "am 9 y bore" in stack.ask_text(caller, "3", lang="cy").text()
    first = stack.ask_text(new_mobile(), "3", lang="cy").text()
    assert stack.ask_text(caller, "3", lang="cy").text() == first, "asked again: as the first time, in Welsh"


# ------------------------------------------------------------------ 8. small screens
def test_small_screens_one_meaning_per_key_and_closed_says_when_it_opens(stack):
    texter = stack.texter(new_mobile())
    main = texter.send("hi")
    assert "0 Menu" not in main
    sub = texter.send("7")
    assert "Main menu" not in sub and "0 Menu" in sub and not re.search(r"^8 ", sub, re.M)
    stack.clock.now = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)   # a weeknight: Galop closed
    reply = texter.send("0") and texter.send("3")
    assert "Closed now, opens today 10am." in reply
