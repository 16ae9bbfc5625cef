"""Losing the Redis primary: a Sentinel failover under calls, texts and follow-ups, with real processes.

A primary, a replica and three Sentinels (tests/sentinels.py: real redis-server processes on 127.0.0.1,
a Sentinel calls a silent primary down after 1 s), web (the Procfile's web line, gunicorn), a Celery
worker and beat, all three on the `sentinel://` REDIS_URL, the Twilio stand-in. While signed calls and
texts keep arriving, follow-ups are booked and their texts are in flight at Twilio; then the primary is
killed with -9 and the Sentinels promote the replica. Then:
- every signed request, before, during and after the failover, was answered with valid TwiML (the call
  still put through to the 24-hour line; the text still answered);
- every follow-up booked before the kill and after the promotion was sent exactly once and deleted;
- the worker that ran before is the one running after (same PID), and beat is still running and
  publishing (a heartbeat it queued after the promotion was run by the worker).

Replication is asynchronous: what the primary acknowledged in its last moment may never reach the
replica (docs/deployment.md, "Failover with Sentinel": `min-replicas-to-write` bounds that). That loss
is not what this test is about, so it waits until the replica has everything before the kill. (Without
that wait, a follow-up whose 'sending' mark was written in the last milliseconds before the kill was
seen sent twice: the new primary had it as never tried, so nothing asked Twilio first.)
"""
from __future__ import annotations

import itertools
import time

import pytest

from router.dev.embedded_redis import free_port
from router.store.connection import make_redis
from tests.processes import CeleryBeat, CeleryWorker, GunicornWeb, HttpClient, start_together, stop_together, \
    wait_until, worker_env
from tests.sentinels import SentinelCluster
from tests.support import ACCOUNT_SID, TOKEN, Call
from tests.test_faults_under_load import Load
from tests.twilio_standin import TwilioStandin

SENDER = "MG" + "0123456789abcdef" * 2           # a Messaging Service SID, as the contract's checks use
_numbers = itertools.count(1)


def new_mobile() -> str:
    """A mobile number of its own for each booking (the load's callers are +4474001…)."""
    return f"+4474009{next(_numbers):05d}"


def book_followup(web_url: str) -> tuple[str, bool]:
    """A whole call, as Twilio follows it, from a new number: key 1 (put through), the call ends, "yes,
    it is safe to text", "text me now". The number, and whether the app promised the text."""
    number = new_mobile()
    call = Call(HttpClient(web_url), caller=number, base=web_url).start().press("1")
    call.dial_ends("completed").press("2").press("1")
    return number, "text you now" in call.text()


@pytest.fixture
def deployment(tmp_path):
    cluster, standin, processes = SentinelCluster(tmp_path / "redis"), None, []
    try:
        cluster.start()
        standin = TwilioStandin(account_sid=ACCOUNT_SID, auth_token=TOKEN, step_delay=0.02).start()
        # the account's Messaging Service the deployment names (Twilio refuses an unknown one: 21701)
        standin.add_messaging_service(["+447700900077"], sid=SENDER, friendly_name="follow-ups")
        port = free_port()
        (tmp_path / "prometheus").mkdir()
        env = worker_env(cluster.url, standin, FOLLOWUP_SENDER=SENDER, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                         FOLLOWUP_DISPATCH_SECONDS="1", HEARTBEAT_SECONDS="1",
                         PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
                         STATE_HASH_SECRET="failover-state-secret-" + "1" * 32,
                         FOLLOWUP_ENCRYPTION_KEY="failover-followup-key-" + "2" * 32)
        processes = [GunicornWeb(env, port=port), CeleryWorker(env, concurrency=2),
                     CeleryBeat(env, schedule_file=str(tmp_path / "beat"))]
        start_together(*processes)
        yield (cluster, standin, *processes)
    finally:
        stop_together(*processes)
        if standin is not None:
            standin.stop()
        cluster.stop()


@pytest.mark.timeout(180)
def test_killing_the_redis_primary_under_load_fails_no_request_and_sends_every_follow_up_once(deployment):
    cluster, standin, web, worker, beat = deployment
    pid = worker.process.pid
    booked: list[str] = []
    refused: list[str] = []        # numbers whose booking the app did not promise (after the failover)
    killed_at = 0.0

    def outbound(number: str) -> list[dict]:
        return [m for m in standin.sent_messages() if m["to"] == number]

    def pending() -> int | None:
        try:
            return make_redis(cluster.url, timeout=1).zcard("hr:fu-due")
        except Exception:  # noqa: BLE001 - Redis mid-failover: not known yet
            return None

    def heartbeat() -> float:
        try:
            return float(make_redis(cluster.url, timeout=1).get("hr:heartbeat") or 0)
        except Exception:  # noqa: BLE001 - Redis mid-failover: not known yet
            return 0.0

    def missing() -> dict:
        """What is not done yet, for the timeout messages."""
        sent = {n: outbound(n) for n in booked}
        return {k: v for k, v in {
            "not sent": [n for n, m in sent.items() if not m],
            "sent more than once": [n for n, m in sent.items() if len(m) > 1],
            "not deleted (with their status callbacks, seconds from the kill)": {
                m["sid"]: [(c["status"], c["status_code"], round(c["time"] - killed_at, 2))
                           for c in standin.callback_log if c["message_sid"] == m["sid"]]
                for ms in sent.values() for m in ms if not m["deleted"]},
            "follow-ups still pending in Redis": pending(),
            "bookings not promised after the failover": len(refused),
            "failed requests (e.g.)": [r.problem for r in list(load.results) if r.problem][:3]}.items() if v}

    def wait_for(done, timeout: float, what: str) -> None:
        """wait_until, whose timeout message says what is still missing then."""
        try:
            wait_until(done, timeout, interval=0.2, message=what)
        except AssertionError as exc:
            own = [line for line in worker.output if '"logger": "tasks.' in line or "rror" in line]
            raise AssertionError(f"{exc}; still {missing()}; the worker's own log lines:\n"
                                 + "".join(own[-40:])) from None

    load = Load(web.url, standin, threads=2, max_seconds=150, max_requests=100_000).start()
    try:
        wait_for(lambda: load.count("before", "key") >= 3 and load.count("before", "text") >= 3, 30,
                 "calls and texts answered before the failover")

        # Follow-ups booked before: Twilio acts on the first two sends at once but answers them only
        # after the kill, so the worker learns of them with the primary gone.
        standin.slow("POST", r"/Messages\.json$", seconds=2.0, count=2)
        for _ in range(3):
            number, promised = book_followup(web.url)
            assert promised, "a follow-up is promised while Redis is up"
            booked.append(number)
        # Every one of them claimed and marked 'sending' (it has reached Twilio), and that on the replica
        # too: a mark written after this point could be lost with the primary (see the module's notes).
        wait_for(lambda: all(outbound(n) for n in booked), 20, "the three texts to reach Twilio before the kill")
        cluster.wait(cluster.replica_caught_up, 10, "the replica to hold everything the primary holds")

        load.phase = "failover"
        killed_at = time.time()
        cluster.kill_primary()
        cluster.wait(cluster.promoted, 30, "the Sentinels to promote the replica after kill -9 of the primary")
        promoted_at = time.time()
        load.phase = "after"

        # Follow-ups booked after the promotion: the web tier finds the new primary by itself. A booking
        # the app could not keep is said so to the caller (no promise), and then must send nothing.
        after = len(booked)

        def book_one_after() -> bool:
            number, promised = book_followup(web.url)
            (booked if promised else refused).append(number)
            return len(booked) - after >= 3

        wait_for(book_one_after, 30, "three follow-ups promised after the failover")
        wait_for(lambda: load.count("after", "key") >= 3 and load.count("after", "text") >= 3, 30,
                 "calls and texts answered after the failover")
        wait_for(lambda: not missing(), 60, "every follow-up booked before and after the failover to be sent "
                                            "once, deleted and finished")
        # Beat publishes to the new primary and the worker consumes from it: a heartbeat (beat queues
        # one every second here; the worker that runs it writes the time) from after the promotion.
        wait_for(lambda: heartbeat() > promoted_at, 30, "a heartbeat queued by beat and run by the worker "
                                                       "after the promotion")
        # A follow-up finished in Redis cannot be sent again: the counts below are final.
        results = load.stop()

        failed = [r for r in results if r.problem]
        assert not failed, f"{len(failed)} of {len(results)} signed requests failed, e.g. {failed[:5]}"
        for phase in ("before", "failover", "after"):
            assert load.count(phase) > 0, f"no request answered in phase {phase}"
        assert max(r.seconds for r in results) < 10, "Twilio waits 15 s; every answer came well before"
        assert {n: len(outbound(n)) for n in booked} == {n: 1 for n in booked}, "one text per booking"
        assert not [m for n in refused for m in outbound(n)], "no text to a caller who was not promised one"
        assert worker.process.poll() is None and worker.process.pid == pid, (
            "the same worker process rides out the failover:\n" + worker.log()[-3000:])
        assert "Unrecoverable error" not in worker.log()
        assert beat.process.poll() is None, "beat still running:\n" + beat.log()[-3000:]
    finally:
        load.stop()
