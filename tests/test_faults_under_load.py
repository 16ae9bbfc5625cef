"""Faults under load, with real processes: Redis killed and restarted, a Celery worker killed with -9.

While several threads post signed webhooks to the web app on a real port, a part fails:
- Redis (persistent: AOF on, the same port and data folder when it comes back): no request fails, calls
  keep being put through, and a follow-up stored before the crash is sent once Redis is back;
- a Celery worker with follow-ups in flight: every follow-up asked for ends as exactly one text per
  number, and every text is deleted from Twilio, once a replacement worker and beat run.
"""
from __future__ import annotations

import itertools
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
import redis

from router.web.app import create_app
from router.dev.embedded_redis import RedisServer, free_port
from tests.conftest import Clock, make_settings
from tests.processes import (CeleryBeat, CeleryWorker, HttpClient, WebServer, start_together, stop_together,
                             wait_until, worker_env)
from tests.support import ACCOUNT_SID, HELPLINE_NUMBER, MOBILE, TOKEN, new_sid, post_signed
from tests.twilio_standin import TwilioStandin

HELPLINE_24H = "+448082000247"
WHEN_URL = "/voice/key?at=when:national_domestic_abuse_helpline&lang=en"   # "text me now" on a call


def mobile(n: int) -> str:
    return f"+4474001{n:05d}"


# ------------------------------------------------------------------------------------------ load
@dataclass
class Result:
    kind: str
    phase: str          # the phase when the request was sent and when it was answered, e.g. "down"
    status: int
    problem: str | None
    seconds: float


@dataclass
class Load:
    """Signed webhooks from several threads until told to stop, or a request or time limit is reached."""

    base: str
    standin: TwilioStandin
    threads: int = 4
    max_requests: int = 3000
    max_seconds: float = 60.0
    phase: str = "before"
    results: list[Result] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _count: itertools.count = field(default_factory=itertools.count)
    _workers: list[threading.Thread] = field(default_factory=list)

    KINDS = ("call", "key", "text", "sms_status", "call_status")

    def start(self) -> "Load":
        deadline = time.monotonic() + self.max_seconds
        for i in range(self.threads):
            thread = threading.Thread(target=self._run, args=(i, deadline), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def stop(self) -> list[Result]:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in self._workers), "a load thread did not finish"
        return self.results

    def count(self, phase: str, kind: str | None = None) -> int:
        return sum(1 for r in list(self.results) if r.phase == phase and kind in (None, r.kind))

    def _run(self, index: int, deadline: float) -> None:
        client = HttpClient(self.base)
        for n in itertools.count(index):
            if self._stop.is_set() or time.monotonic() > deadline or next(self._count) >= self.max_requests:
                return
            kind = self.KINDS[n % len(self.KINDS)]
            phase = self.phase
            started = time.monotonic()
            try:
                status, problem = self._one(client, kind, n)
            except Exception as exc:  # a refused connection or a timeout is a failed request too
                status, problem = 0, f"{type(exc).__name__}: {exc}"
            seconds = time.monotonic() - started
            self.results.append(Result(kind, phase if phase == self.phase else f"{phase}->{self.phase}",
                                       status, problem, seconds))

    def _one(self, client: HttpClient, kind: str, n: int) -> tuple[int, str | None]:
        call = {"CallSid": new_sid("CA"), "AccountSid": ACCOUNT_SID, "From": mobile(n % 1000),
                "To": HELPLINE_NUMBER, "CallStatus": "in-progress", "Direction": "inbound"}
        if kind == "call":
            response = post_signed(client, "/voice", call, base=self.base)
            return response.status_code, check_twiml(response, lambda root: root.find("Gather") is not None)
        if kind == "key":
            response = post_signed(client, "/voice/key?at=main&lang=en", dict(call, Digits="1"), base=self.base)
            return response.status_code, check_twiml(
                response, lambda root: [e.text for e in root.iter("Number")] == [HELPLINE_24H])
        if kind == "text":
            sid = self.standin.add_inbound_message(mobile(n % 1000), HELPLINE_NUMBER, "hello")
            params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": mobile(n % 1000),
                      "To": HELPLINE_NUMBER, "Body": "hello" if n % 2 else "1", "NumMedia": "0"}
            response = post_signed(client, "/sms", params, base=self.base)
            return response.status_code, check_twiml(response, lambda root: len(root.findall("Message")) == 1)
        if kind == "sms_status":
            params = {"MessageSid": new_sid("SM"), "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}
            response = post_signed(client, "/sms/status", params, base=self.base)
            return response.status_code, None if response.status_code in {200, 204} else "status"
        params = dict(call, CallStatus="completed")
        response = post_signed(client, "/voice/status", params, base=self.base)
        return response.status_code, None if response.status_code in {200, 204} else "status"


def check_twiml(response, expectation) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    try:
        root = ET.fromstring(response.data)
    except ET.ParseError as exc:
        return f"not XML: {exc}"
    if root.tag != "Response":
        return "not TwiML"
    if not expectation(root):
        return f"unexpected TwiML: {response.data[:300]!r}"
    return None


# ------------------------------------------------------------------------------------------ the stack
@dataclass
class Stack:
    redis_url: str
    standin: TwilioStandin
    web: WebServer
    clock: Clock
    worker: CeleryWorker

    def __post_init__(self):
        self.client = HttpClient(self.web.url)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True, socket_timeout=2)

    def outbound(self, to: str | None = None) -> list[dict]:
        return [m for m in self.standin.sent_messages() if to is None or m["to"] == to]

    def followup_now(self, to: str) -> None:
        """A caller who pressed 'text me now' at the end of a call (the URL a real call reaches)."""
        params = {"CallSid": new_sid("CA"), "AccountSid": ACCOUNT_SID, "From": to, "To": HELPLINE_NUMBER,
                  "CallStatus": "in-progress", "Direction": "inbound", "Digits": "1"}
        response = post_signed(self.client, WHEN_URL, params, base=self.web.url)
        assert response.status_code == 200 and b"text you now" in response.data, response.data

    def followup_later(self, to: str) -> None:
        params = {"CallSid": new_sid("CA"), "AccountSid": ACCOUNT_SID, "From": to, "To": HELPLINE_NUMBER,
                  "CallStatus": "in-progress", "Direction": "inbound", "Digits": "2"}
        response = post_signed(self.client, WHEN_URL, params, base=self.web.url)
        assert response.status_code == 200, response.data

    def pending(self) -> int:
        return self.redis().zcard("hr:fu-due")


def build_stack(redis_url: str, step_delay: float = 0.02, **worker_extra):
    standin = TwilioStandin(account_sid=ACCOUNT_SID, auth_token=TOKEN, step_delay=step_delay).start()
    port = free_port()
    clock = Clock(datetime.now(timezone.utc))
    app = create_app(make_settings(redis_url, public_base_url=f"http://127.0.0.1:{port}",
                                   api_base_url=standin.url), clock=clock)
    web = WebServer(app, port).start()
    worker = CeleryWorker(worker_env(redis_url, standin, **worker_extra), concurrency=2)
    return Stack(redis_url, standin, web, clock, worker)


@pytest.fixture
def persistent_redis(tmp_path):
    """Its own persistent Redis on a fixed port, so that after a crash it comes back where it was."""
    server = RedisServer(tmp_path / "redis", port=free_port(), persist=True).start()
    yield server
    server.stop(kill=True)


def wait_aof_written(client: redis.Redis) -> None:
    """Everything written so far is in the append-only file (not only in Redis's own buffer)."""
    wait_until(lambda: client.info("persistence").get("aof_buffer_length", 0) == 0, 5,
               message="the AOF buffer to be written")


# ------------------------------------------------------------------------------------------ tests
def test_redis_killed_and_restarted_under_load_fails_no_request_and_loses_no_follow_up(persistent_redis, tmp_path):
    stack = build_stack(persistent_redis.url)
    beat = CeleryBeat(dict(stack.worker.env, FOLLOWUP_DISPATCH_SECONDS="1"), schedule_file=str(tmp_path / "beat"))
    load = None
    try:
        stack.worker.start()
        # A follow-up asked for an hour ago ("in about an hour"), due now, stored but not yet sent.
        stack.clock.now = datetime.now(timezone.utc) - timedelta(minutes=61)
        stack.followup_later(MOBILE)
        stack.clock.now = datetime.now(timezone.utc)
        assert stack.pending() == 1 and stack.outbound() == []
        wait_aof_written(stack.redis())

        load = Load(stack.web.url, stack.standin).start()
        wait_until(lambda: load.count("before") >= 25, 20, message="load before the crash")
        load.phase = "down"
        persistent_redis.stop(kill=True)                                   # kill -9: no save on the way out
        wait_until(lambda: load.count("down", "key") >= 8 and load.count("down", "text") >= 8, 30,
                   message="requests answered while Redis is down")
        persistent_redis.start()                                           # same port, same data folder
        load.phase = "after"
        wait_until(lambda: load.count("after", "key") >= 8 and load.count("after", "text") >= 8, 30,
                   message="requests answered after Redis is back")
        results = load.stop()

        failed = [r for r in results if r.problem]
        assert not failed, f"{len(failed)} of {len(results)} requests failed, e.g. {failed[:5]}"
        assert max(r.seconds for r in results) < 10, "Twilio waits 15 s; every answer came well before"
        for phase in ("before", "down", "after"):
            assert load.count(phase, "key") > 0, f"no key press answered in phase {phase}"

        # The follow-up stored before the crash survived it, and is sent once the dispatcher runs, by
        # the worker that was running all along (router/store/broker.py keeps it alive through the restart).
        assert stack.pending() == 1
        assert stack.worker.process.poll() is None, stack.worker.log()[-3000:]
        beat.start()
        (message,) = wait_until(lambda: stack.outbound(MOBILE), 30, message="the follow-up after the restart")
        wait_until(lambda: message["sid"] in stack.standin.deleted_sids, 30, message="its deletion")
        wait_until(lambda: stack.pending() == 0, 10, message="the follow-up to be finished")
        assert len(stack.outbound(MOBILE)) == 1

        # The web tier queues work again: a text answered now is deleted from Twilio.
        posted: list[str] = []

        def a_new_text_is_deleted() -> bool:
            sid = stack.standin.add_inbound_message(MOBILE, HELPLINE_NUMBER, "hello")
            post_signed(stack.client, "/sms", {"MessageSid": sid, "From": MOBILE, "To": HELPLINE_NUMBER,
                                               "Body": "hello"}, base=stack.web.url)
            posted.append(sid)
            return bool(set(posted) & set(stack.standin.deleted_sids))

        wait_until(a_new_text_is_deleted, 20, interval=0.25, message="texts to be deleted again")
    finally:
        if load is not None:
            load.stop()
        stop_together(beat, stack.worker)
        stack.web.stop()
        stack.standin.stop()


def test_worker_killed_under_a_load_of_follow_ups_loses_none_and_sends_none_twice(redis_url, tmp_path):
    stack = build_stack(redis_url)
    numbers = [mobile(n) for n in range(24)]
    replacement = CeleryWorker(stack.worker.env, name="w2", concurrency=2)
    beat = CeleryBeat(dict(stack.worker.env, FOLLOWUP_DISPATCH_SECONDS="1"), schedule_file=str(tmp_path / "beat"))
    try:
        stack.worker.start()
        # The first two sends (one per pool process) are slow to be answered: Twilio acts on them, and
        # the worker is killed before it hears back. With acks late and a prefetch of one per process,
        # those two are all it holds, so the kill leaves two follow-ups caught mid-send.
        stack.standin.slow("POST", r"/Messages\.json$", seconds=3, count=2)
        first, second = numbers[:16], numbers[16:]
        trigger_in_parallel(stack, first)
        wait_until(lambda: len(stack.outbound()) >= 2, 20, message="sends in flight")
        stack.worker.kill9()
        trigger_in_parallel(stack, second)                # asked for while no worker runs
        start_together(replacement, beat)
        stack.worker = replacement

        def all_done() -> bool:
            sent = stack.outbound()
            return (stack.pending() == 0 and {m["to"] for m in sent} >= set(numbers)
                    and all(m["deleted"] for m in sent))

        wait_until(all_done, 60, interval=0.1, message="every follow-up sent and deleted")
        sent = stack.outbound()
        per_number = {n: sum(1 for m in sent if m["to"] == n) for n in numbers}
        twice = {n: c for n, c in per_number.items() if c != 1}
        assert not twice, f"numbers not texted exactly once: {twice}"
        assert not [k for k in stack.redis().keys("hr:fu:*")], "no number is kept once its text is sent"
    finally:
        stop_together(beat, replacement, stack.worker)
        stack.web.stop()
        stack.standin.stop()


def trigger_in_parallel(stack: Stack, numbers: list[str], threads: int = 4) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(stack.followup_now, numbers))


def test_a_lost_answer_while_twilio_still_queues_the_text_does_not_send_it_twice(redis_url):
    """Twilio took the text but its answer was lost, and the text is still queued at Twilio (under its
    rate limits a text can wait there a while) when the retry asks whether it was sent."""
    stack = build_stack(redis_url, step_delay=1.0)
    try:
        stack.worker.start()
        stack.standin.inject("POST", r"/Messages\.json$", status=500, count=1, apply=True)
        stack.followup_now(MOBILE)
        wait_until(lambda: stack.outbound(MOBILE), message="Twilio to have the text")
        wait_until(lambda: stack.pending() == 0, 20, message="the follow-up to be settled")
        (message,) = stack.outbound(MOBILE)
        wait_until(lambda: message["sid"] in stack.standin.deleted_sids, 20, message="its deletion")
        assert len(stack.outbound(MOBILE)) == 1
    finally:
        stack.worker.stop()
        stack.web.stop()
        stack.standin.stop()
