"""The outbound leg of a connected call: the <Dial> action carries its DialCallSid, and its record is
deleted from Twilio as soon as it is final, not left for the five-minute history sweep.

The web app on a real port, a real Celery worker process, a real Redis and the Twilio stand-in.
"""
from __future__ import annotations

from urllib.parse import urljoin

import pytest

from router.web.app import create_app
from router.dev.embedded_redis import free_port
from tests.conftest import make_settings
from tests.processes import CeleryWorker, HttpClient, WebServer, wait_until, worker_env
from tests.support import ACCOUNT_SID, HELPLINE_NUMBER, MOBILE, TOKEN, Call
from tests.twilio_standin import TwilioStandin


@pytest.fixture
def stack(redis_url):
    standin = TwilioStandin(account_sid=ACCOUNT_SID, auth_token=TOKEN, step_delay=0.02).start()
    port = free_port()
    app = create_app(make_settings(redis_url, public_base_url=f"http://127.0.0.1:{port}",
                                   api_base_url=standin.url))
    web = WebServer(app, port).start()
    worker = CeleryWorker(worker_env(redis_url, standin)).start()
    try:
        yield standin, web
    finally:
        worker.stop()
        web.stop()
        standin.stop()


def put_through(standin, web, leg_status: str) -> tuple[Call, str]:
    """A caller presses 1 and is dialled through; Twilio's outbound leg, as it holds it."""
    parent = standin.add_call(MOBILE, HELPLINE_NUMBER, status="in-progress")
    call = Call(HttpClient(web.url), base=web.url, call_sid=parent).start().press("1")
    assert call.dialled == ["+448082000247"]
    leg = standin.add_call(HELPLINE_NUMBER, call.dialled[0], status=leg_status, direction="outbound-dial")
    return call, leg


def dial_action(call: Call, leg: str, status: str) -> None:
    dial = call.twiml.find("Dial")
    call._post(urljoin(call.url, dial.get("action")), DialCallStatus=status, DialCallSid=leg)


def test_the_dialled_legs_record_is_deleted_after_the_dial_action(stack):
    standin, web = stack
    call, leg = put_through(standin, web, "completed")
    dial_action(call, leg, "completed")
    assert call.gather is not None and call.heard, "the caller's journey goes on (the text offer)"
    wait_until(lambda: leg in standin.deleted_call_sids, 15, message="the dial leg's deletion")
    assert call.call_sid not in standin.deleted_call_sids, "the caller's own call is still going on"


def test_a_leg_twilio_has_not_finished_with_is_deleted_once_it_is(stack):
    """The action can reach us before Twilio has closed the leg (20009): the deletion is retried."""
    standin, web = stack
    call, leg = put_through(standin, web, "in-progress")
    dial_action(call, leg, "no-answer")
    wait_until(lambda: any(r["path"].endswith(f"/Calls/{leg}.json") and r["code"] == 20009
                           for r in standin.request_log), 15, message="Twilio refusing an unfinished leg")
    standin.set_call_status(leg, "no-answer")
    wait_until(lambda: leg in standin.deleted_call_sids, 20, message="the leg's deletion once final")
