"""Twilio failing, then gone: no log of any process holds a number or an exception's text.

A follow-up's send is answered 503 (Twilio asks us to retry), then the stand-in stops, so every later
request is a refused connection: the retry asks Twilio what was sent to the number (a GET with
`To=%2B44...` in its URL) and the history sweep lists messages and calls. requests' ConnectionError
quotes the whole URL, and Celery logs a task's escaping exception in full ("raised unexpected: ...").
The web app (on a real port), a Celery worker and Celery beat (real processes) run through it; then
every line the web process logged (every logger, at DEBUG) and everything the worker and beat printed
is searched for the caller's number in any format and for the text of those exceptions.
"""
from __future__ import annotations

import logging

import redis

from router.web.app import create_app
from router.dev.embedded_redis import free_port
from tests.conftest import make_settings
from tests.processes import CeleryBeat, CeleryWorker, HttpClient, WebServer, wait_until, worker_env
from tests.support import ACCOUNT_SID, HELPLINE_NUMBER, TOKEN, Call, post_signed
from tests.test_privacy_scan import capture, number_pattern  # noqa: F401 (a fixture)
from tests.twilio_standin import TwilioStandin

CALLER = "+447400123555"
WHEN_URL = "/voice/key?at=when:national_domestic_abuse_helpline&lang=en"   # "text me now" on a call
# What the exceptions of a refused connection and of a 503 say; none of it may reach a log.
EXCEPTION_TEXT = ["Connection refused", "HTTPConnectionPool", "Max retries exceeded", "NewConnectionError",
                  "Service Unavailable", "Messages.json?", "Unable to create record", "Errno 111"]


def send_attempts_after_the_first(worker: CeleryWorker) -> int:
    """The follow-up task's attempts that Celery reported on (retried, or failed with an exception)."""
    return sum(1 for line in worker.output if "send_followup[" in line and ("retry" in line or "raised" in line))


def test_no_number_or_exception_text_in_any_log_when_twilio_fails(redis_url, capture, tmp_path):
    standin = TwilioStandin(account_sid=ACCOUNT_SID, auth_token=TOKEN, step_delay=0.02).start()
    port = free_port()
    app = create_app(make_settings(redis_url, public_base_url=f"http://127.0.0.1:{port}", api_base_url=standin.url))
    logging.getLogger().setLevel(logging.DEBUG)          # create_app configured logging at INFO
    web = WebServer(app, port).start()
    env = worker_env(redis_url, standin, TASK_RETRY_BASE_SECONDS="0.5", HISTORY_SWEEP_SECONDS="1")
    worker = CeleryWorker(env).start()
    beat = CeleryBeat(env, schedule_file=str(tmp_path / "beat-schedule")).start()
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    client = HttpClient(web.url)
    try:
        # --- Twilio answers the send with 503: the follow-up is left 'sending', to be retried
        standin.inject("POST", r"/Messages\.json$", status=503, count=1)
        call_sid = standin.add_call(CALLER, HELPLINE_NUMBER, status="completed")
        call = Call(client, caller=CALLER, base=web.url, call_sid=call_sid)
        call._post(WHEN_URL, Digits="1")
        assert "text you now" in call.text()
        wait_until(lambda: any(e["status"] == 503 for e in standin.request_log), message="the 503")
        # --- then Twilio is gone: every request from now on is a refused connection
        standin.stop()
        post_signed(client, "/voice/status", {"CallSid": call_sid, "CallStatus": "completed", "From": CALLER,
                                              "AccountSid": ACCOUNT_SID}, base=web.url)
        wait_until(lambda: send_attempts_after_the_first(worker) >= 1, 30, interval=0.1,
                   message="attempts against a refused connection")
        wait_until(lambda: any("sweep[" in line and "raised" in line for line in worker.output), 30, interval=0.1,
                   message="the sweep failing against a refused connection")
    finally:
        beat.stop()
        worker.stop()
        web.stop()
        standin.stop()

    places = {"web log": capture.lines, "worker output": worker.output, "beat output": beat.output}
    pattern = number_pattern(CALLER)
    found = [(place, line[:300]) for place, lines in places.items() for line in lines
             if pattern.search(line) or any(text in line for text in EXCEPTION_TEXT)]
    assert not found, "\n".join(map(repr, found[:20]))
    assert "raised unexpected: TwilioCallFailed('ConnectionError')" in worker.log(), "type only, never the text"
    assert float(r.hget("hr:stats", "followups|retried") or 0) >= 2, "a refused connection is retried, not dropped"
    assert len(capture.lines) > 10 and len(worker.output) > 10 and len(beat.output) > 2, "real output was scanned"
