"""Privacy, proved by looking: run a full scenario, then scan everything the system wrote.

Calls, texts, follow-ups (now and later), STOP, and errors (Twilio losing an answer, refusing a text,
failing deletions; our own code failing behind the safety net; a forged request) run against the web
app on a real port, a real Celery worker process, a real Redis and the Twilio stand-in. Then every log
line of the web process (every logger, at DEBUG), everything the worker printed, the /metrics page, and
every Redis key and value are searched for the callers' numbers in any format and for the words they
texted and the texts sent to them: none may appear. Pending follow-ups (hr:fu:<id>) may hold a number
only until sent or cancelled, and are gone at the end; every key we write has a TTL. The deletion queue
(hr:del-*) empties as it is drained, so it is also sampled while the scenario runs, and scanned too.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import phonenumbers
import pytest
import redis
import requests

from router.web.app import create_app
from router.dev.embedded_redis import free_port
from router.logs import JsonFormatter
from router.settings import Settings
from tasks import create_celery
from tests.conftest import Clock, make_settings
from tests.processes import CeleryWorker, HttpClient, WebServer, wait_until, worker_env
from tests.support import ACCOUNT_SID, HELPLINE_NUMBER, METRICS_AUTH, TOKEN, Call, Texter, is_broker_key, post_signed
from tests.twilio_standin import TwilioStandin

CALLER = "+447400987654"        # calls, asks for a text now (Twilio loses the answer to the first send)
TEXTER = "+447400246810"        # texts, asks for a text later
STOPPER = "+447400135790"       # texts, asks for a text tomorrow morning, then sends STOP
REFUSED = "+447400864209"       # asks for a text now, which Twilio refuses
NUMBERS = (CALLER, TEXTER, STOPPER, REFUSED)
WORDS = ["Hello, it is Samira, I need to talk to someone quietly",
         "my partner checks my phone every night",
         "purple quokka umbrella"]


def number_pattern(number: str) -> re.Pattern:
    """The number's national digits, with any spacing or punctuation between them: matches E.164
    (+447400987654), without the plus, national (07400 987654), URL-encoded (%2B447400987654) ..."""
    national = str(phonenumbers.parse(number).national_number)
    return re.compile(r"[\s\-.()/]{0,3}".join(national))


class Capture(logging.Handler):
    """Every record of every logger in this process, as the app writes it (JSON) and as raw text."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.json = JsonFormatter()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.json.format(record))
        self.lines.append(record.getMessage())


@pytest.fixture
def capture():
    root = logging.getLogger()
    handler, level = Capture(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def readable(value) -> list[str]:
    """A Redis value and what it hides: JSON inside, and kombu's base64 task bodies decoded."""
    out = [value if isinstance(value, str) else repr(value)]
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return out
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("body_encoding") == "base64" and isinstance(item.get("body"), str):
                out.append(base64.b64decode(item["body"]).decode("utf-8", "replace"))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            out.append(item)
    return out


def redis_dump(client: redis.Redis, match: str | None = None) -> dict[str, list[str]]:
    """Every key (matching `match`) and everything in it, whatever its type."""
    dump = {}
    for key in client.scan_iter(match=match, count=500):
        kind = client.type(key)
        if kind == "string":
            values = [client.get(key)]
        elif kind == "hash":
            values = [f"{k}={v}" for k, v in client.hgetall(key).items()] + list(client.hvals(key))
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = [f"{m}:{s}" for m, s in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        else:
            values = [repr(client.dump(key))]
        dump[key] = [key] + [text for value in values if value is not None for text in readable(value)]
    return dump


class QueueSampler:
    """Snapshots of the deletion queue's keys (and their TTLs) every few ms while the scenario runs."""

    def __init__(self, redis_url: str):
        self.client = redis.Redis.from_url(redis_url, decode_responses=True)
        self.seen: dict[str, set[str]] = {}
        self.no_ttl: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "QueueSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            for key, values in redis_dump(self.client, "hr:del*").items():
                self.seen.setdefault(key, set()).update(values)
                if self.client.ttl(key) == -1:
                    self.no_ttl.add(key)


def test_nothing_the_system_writes_holds_a_number_or_a_text(redis_url, capture):
    # Texts stay "queued" at Twilio for a moment (as under its rate limits), so a send whose answer was
    # lost is retried before any status callback: the worker then asks Twilio what it sent to the number.
    standin = TwilioStandin(account_sid=ACCOUNT_SID, auth_token=TOKEN, step_delay=0.25).start()
    port = free_port()
    clock = Clock(datetime.now(timezone.utc))
    app = create_app(make_settings(redis_url, public_base_url=f"http://127.0.0.1:{port}", api_base_url=standin.url),
                     clock=clock)
    logging.getLogger().setLevel(logging.DEBUG)          # create_app configured logging at INFO
    web = WebServer(app, port).start()
    worker = CeleryWorker(worker_env(redis_url, standin)).start()
    client = HttpClient(web.url)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    sampler = QueueSampler(redis_url).start()
    try:
        # --- a call: put through, then "text me now"; Twilio creates the text but its answer is lost
        standin.inject("POST", r"/Messages\.json$", status=500, count=1, apply=True)
        call_sid = standin.add_call(CALLER, HELPLINE_NUMBER, status="in-progress")
        call = Call(client, caller=CALLER, base=web.url, call_sid=call_sid).start().press("1")
        call.dial_ends("completed").press("2").press("1")
        assert "text you now" in call.text()
        wait_until(lambda: [m for m in standin.sent_messages() if m["to"] == CALLER], message="the call's text")
        standin.set_call_status(call_sid, "completed")
        post_signed(client, "/voice/status", {"CallSid": call_sid, "CallStatus": "completed", "From": CALLER,
                                              "AccountSid": ACCOUNT_SID}, base=web.url)

        # --- texts, with words of their own; "in about an hour", asked an hour ago; deletions fail twice
        standin.inject("DELETE", r"/Messages/SM\w+\.json$", status=500, count=2)
        clock.now = datetime.now(timezone.utc) - timedelta(minutes=61)
        texter = Texter(client, sender=TEXTER, base=web.url)
        inbound = []
        for body in [WORDS[0], WORDS[1], WORDS[2], "2", "8", "1"]:
            sid = standin.add_inbound_message(TEXTER, HELPLINE_NUMBER, body)
            inbound.append(sid)
            texter.send(body, message_sid=sid)
        assert "about an hour" in texter.replies[-1]
        clock.now = datetime.now(timezone.utc)
        create_celery(Settings(redis_url=redis_url)).send_task("tasks.followup.dispatch_due")
        wait_until(lambda: [m for m in standin.sent_messages() if m["to"] == TEXTER], message="the texter's text")

        # --- STOP cancels a text asked for tomorrow morning
        stopper = Texter(client, sender=STOPPER, base=web.url)
        for body in ["hi", "3", "8", "2"]:
            stopper.send(body)
        assert r.zcard("hr:fu-due") >= 1
        holding = {key for key, values in redis_dump(r).items()
                   if any(number_pattern(STOPPER).search(v) for v in values)}
        assert holding == set(), f"even a pending follow-up keeps its number sealed: {holding}"
        assert any(r.hexists(key, "sealed") for key in r.scan_iter("hr:fu:*")), "the pending follow-up"
        assert stopper.send("STOP").startswith("OK, we will not text this phone.")

        # --- errors: Twilio refuses a text; our own code fails (safety net); a forged request
        standin.inject("POST", r"/Messages\.json$", status=400, code=21211, count=1,
                       message=f"The 'To' number {REFUSED} is not a valid phone number.")
        refused = Call(client, caller=REFUSED, base=web.url)
        refused._post("/voice/key?at=when:national_domestic_abuse_helpline&lang=en", Digits="1")
        query = urlencode({"at": "main", "lang": "en", "n": "²"})
        post_signed(client, f"/voice/silence?{query}", Call(client, caller=CALLER).params(), base=web.url)
        forged = requests.post(f"{web.url}/sms", data={"From": CALLER, "Body": WORDS[0]},
                               headers={"X-Twilio-Signature": "forged"}, timeout=10)
        assert forged.status_code == 403

        # --- everything settles: texts sent once, deleted; inbound texts and the call record deleted
        def settled() -> bool:
            sent = standin.sent_messages()
            return (r.zcard("hr:fu-due") == 0 and {m["to"] for m in sent} >= {CALLER, TEXTER}
                    and all(m["deleted"] or m["status"] == "failed" for m in sent)
                    and set(inbound) <= set(standin.deleted_sids) and call_sid in standin.deleted_call_sids)

        wait_until(settled, 40, interval=0.1, message="the scenario to settle")
        sent = standin.sent_messages()
        texts_sent = [m["body"] for m in sent]
        metrics = requests.get(f"{web.url}/metrics", headers=METRICS_AUTH, timeout=10).text
        assert "helpline_" in metrics
        assert not list(r.scan_iter("hr:fu:*")), "pending follow-ups hold a number only until sent or cancelled"
        dump = redis_dump(r)
    finally:
        sampler.stop()
        worker.stop()
        web.stop()
        standin.stop()

    # --- the scan
    places = {"web log": capture.lines, "worker output": worker.output, "/metrics": [metrics]}
    places.update({f"redis {key}": values for key, values in dump.items()})
    places.update({f"redis {key} (while queued)": sorted(values) for key, values in sampler.seen.items()})
    assert "hr:del-due" in sampler.seen, "the deletion queue was looked at while it held deletions"
    secrets = {number: number_pattern(number) for number in NUMBERS}
    words = WORDS + texts_sent
    found = []
    for place, lines in places.items():
        for line in lines:
            for number, pattern in secrets.items():
                if pattern.search(line):
                    found.append((place, number, line[:300]))
            for text in words:
                if text in line or json.dumps(text, ensure_ascii=False)[1:-1] in line:
                    found.append((place, text[:30], line[:300]))
    assert not found, "\n".join(map(repr, found[:20]))
    assert len(capture.lines) > 50 and len(worker.output) > 10, "the scan looked at real output"

    no_ttl = [key for key in dump if not is_broker_key(key) and r.ttl(key) == -1]
    assert not no_ttl, f"keys without a TTL: {no_ttl}"
    assert not sampler.no_ttl, f"deletion queue keys without a TTL: {sampler.no_ttl}"

    # --- and the scenario did what it should (checked after the scan, which is this test's point)
    assert sorted(m["to"] for m in sent) == sorted([CALLER, TEXTER]), "one text each, none to STOP or refused"
    assert all(m["deleted"] for m in sent)
