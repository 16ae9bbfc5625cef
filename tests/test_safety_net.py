"""Whatever fails, a signed request gets valid TwiML with the 999 advice and the 24-hour helpline."""
from __future__ import annotations

import logging

import yaml

from router.web.app import create_app
from router.definition.flowfile import load_flows
from tests.conftest import copy_flows, make_settings
from tests.support import METRICS_AUTH, MOBILE, Call, Texter, parse, post_signed


def broken_flows(tmp_path):
    """Flows that pass the schema but make our own engine fail: a phrase with an unknown placeholder."""
    folder = copy_flows(tmp_path)
    data = yaml.safe_load((folder / "phrases.yaml").read_text())
    data["phrases"]["voice_option"]["en"] = "For {label}, press {key} {no_such_placeholder}."
    data["phrases"]["sms_option"]["en"] = "{key} {label} {no_such_placeholder}"
    (folder / "phrases.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return load_flows(folder, lint=False)


def test_a_bug_while_answering_a_call_still_gives_the_safety_twiml_and_connects(tmp_path, redis_url, caplog):
    app = create_app(make_settings(redis_url), flows=broken_flows(tmp_path))
    call = Call(app.test_client())
    with caplog.at_level(logging.ERROR):
        call.start()
    text = call.text()
    assert "9 9 9" in text and "5 5" in text
    assert "oh eight oh eight, two thousand, two four seven" in text
    assert call.gather.get("action") == "/voice/safety-connect"
    call.press("1")
    assert call.dialled == ["+448082000247"]
    assert caplog.records, "the error is logged"
    assert all(MOBILE[3:] not in r.getMessage() for r in caplog.records)


def test_the_safety_answer_puts_a_silent_caller_through_too(tmp_path, redis_url):
    """Issue 19: it used to say goodbye and hang up on someone who could not press anything."""
    app = create_app(make_settings(redis_url), flows=broken_flows(tmp_path))
    call = Call(app.test_client()).start()
    verbs = [verb.tag for verb in call.twiml]
    assert verbs == ["Gather", "Say", "Dial"], verbs
    call.silence()
    assert call.dialled == ["+448082000247"] and not call.hung_up
    after_gather = " ".join(say.text for say in call.twiml.findall("Say"))
    assert after_gather == "Putting you through now. Please hold.", "nothing names a service or abuse"


def test_a_bug_while_answering_a_text_still_gives_the_safety_text(tmp_path, redis_url):
    app = create_app(make_settings(redis_url), flows=broken_flows(tmp_path))
    reply = Texter(app.test_client()).send("hello")
    assert "999" in reply and "0808 2000 247" in reply


def test_calls_route_normally_with_redis_down(app_at, redis_server):
    client = app_at()
    redis_server.stop()
    try:
        call = Call(client).start().press("3")
        assert call.dialled == ["+448009995428"]
        response = post_signed(client, "/voice/status", {"CallSid": call.call_sid, "CallStatus": "completed"})
        assert response.status_code in {200, 204}
    finally:
        redis_server.start()


def test_status_callbacks_with_redis_down_still_answer(app_at, redis_server):
    client = app_at()
    redis_server.stop()
    try:
        response = post_signed(client, "/sms/status", {"MessageSid": "SM" + "2" * 32, "MessageStatus": "delivered"})
        assert response.status_code in {200, 204}
    finally:
        redis_server.start()


def test_safety_twiml_is_valid_twiml_for_both_channels():
    from router.web import last_resort as safety

    for document in (safety.VOICE_TWIML, safety.SMS_TWIML, safety.CONNECT_TWIML):
        parse(document)
    assert "+448082000247" in safety.CONNECT_TWIML


def test_healthz_reports_redis_down_but_still_serves(app_at, redis_server):
    client = app_at()
    redis_server.stop()
    try:
        body = client.get("/healthz", headers=METRICS_AUTH).get_json()
        assert body["status"] == "ok" and body["redis"] == "unavailable"
    finally:
        redis_server.start()


def test_a_text_that_cannot_be_arranged_is_never_promised(app_at, redis_server):
    call = Call(app_at()).start().press("1").dial_ends("completed").press("2")  # yes to a text, once
    redis_server.stop()
    try:
        call.press("2")  # in about an hour: but Redis, where it would wait, is down
        assert "cannot send a text this time" in call.text()
        assert "oh eight oh eight, two thousand, two four seven" in call.text(), "the number, now instead"
        assert "We will text you" not in call.text() and call.hung_up
    finally:
        redis_server.start()

