"""Only Twilio gets in: every unsigned or mis-signed webhook answers 403 and changes nothing."""
from __future__ import annotations

import pytest
import redis

from tests.conftest import make_settings
from tests.support import METRICS_AUTH, MOBILE, TOKEN, post_signed, signature

WEBHOOKS = ["/voice", "/voice/key?at=main&lang=en", "/voice/silence?at=main&lang=en&n=1",
            "/voice/dialled?service=galop&lang=en", "/voice/status", "/voice/safety-connect",
            "/sms", "/sms/status"]
PARAMS = {"CallSid": "CA" + "1" * 32, "MessageSid": "SM" + "1" * 32, "From": MOBILE, "Body": "hi",
          "Digits": "1"}


@pytest.mark.parametrize("path", WEBHOOKS)
def test_missing_signature_is_refused(client, path):
    assert client.post(path, data=PARAMS).status_code == 403


@pytest.mark.parametrize("path", WEBHOOKS)
def test_bad_signature_is_refused(client, path):
    response = client.post(path, data=PARAMS, headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    assert response.status_code == 403


@pytest.mark.parametrize("path", WEBHOOKS)
def test_signed_with_another_token_is_refused(client, path):
    assert post_signed(client, path, PARAMS, token="someone-elses-token").status_code == 403


def test_signature_over_another_url_is_refused(client):
    headers = {"X-Twilio-Signature": signature("http://localhost/voice?at=x", PARAMS)}
    assert client.post("/voice", data=PARAMS, headers=headers).status_code == 403


def test_signature_with_changed_params_is_refused(client):
    headers = {"X-Twilio-Signature": signature("http://localhost/sms", PARAMS)}
    tampered = dict(PARAMS, Body="changed")
    assert client.post("/sms", data=tampered, headers=headers).status_code == 403


def test_query_string_is_part_of_the_signed_url(client):
    params = dict(PARAMS)
    headers = {"X-Twilio-Signature": signature("http://localhost/voice/key?at=main&lang=en", params)}
    assert client.post("/voice/key?at=main&lang=cy", data=params, headers=headers).status_code == 403
    assert client.post("/voice/key?at=main&lang=en", data=params, headers=headers).status_code == 200


def test_refused_request_changes_nothing(client, redis_url):
    client.post("/sms", data=PARAMS)
    assert redis.Redis.from_url(redis_url).keys("*") == []


def test_no_auth_token_configured_refuses_everything(app_at):
    client = app_at(auth_token=None)
    assert post_signed(client, "/voice", PARAMS).status_code == 403


def test_public_base_url_is_the_url_that_is_verified(app_at):
    client = app_at(public_base_url="https://helpline.example.org")
    assert post_signed(client, "/voice", PARAMS).status_code == 403  # signed for http://localhost
    ok = post_signed(client, "/voice", PARAMS, base="https://helpline.example.org")
    assert ok.status_code == 200


def test_forwarded_headers_honoured_only_from_a_trusted_proxy(app_at):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "helpline.example.org"}
    untrusted = app_at()
    params_sig = signature("https://helpline.example.org/voice", PARAMS)
    assert untrusted.post("/voice", data=PARAMS,
                          headers={**headers, "X-Twilio-Signature": params_sig}).status_code == 403
    trusted = app_at(trust_proxy=True)
    assert trusted.post("/voice", data=PARAMS,
                        headers={**headers, "X-Twilio-Signature": params_sig}).status_code == 200


def test_get_on_a_webhook_is_refused(client):
    assert client.get("/voice").status_code in {403, 405}


def test_healthz_answers_without_a_signature(client):
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and len(body["flows_version"]) == 12 and body["redis"] == "ok"


def test_oversized_body_is_refused_early(client):
    big = {"Body": "x" * (200 * 1024)}
    assert client.post("/sms", data=big).status_code == 413


def test_settings_repr_never_shows_the_token():
    assert TOKEN not in repr(make_settings())


@pytest.mark.parametrize("path", WEBHOOKS)
@pytest.mark.parametrize("header", ["é" * 28, "bm90IGEgc2lnbmF0dXJl€", "\u2603", "ÿ" + "A" * 27])
def test_a_signature_that_is_not_ascii_is_refused_on_every_webhook(client, path, header):
    """Not the safety TwiML (a 200 that also counts as an error): a plain 403, like any bad signature."""
    before = safety_answers(client)
    response = client.post(path, data=PARAMS, headers={"X-Twilio-Signature": header})
    assert response.status_code == 403
    assert safety_answers(client) == before


def safety_answers(client) -> float:
    """helpline_errors_total{kind="safety_twiml"} now (the counters live as long as the test process)."""
    import re

    metrics = client.get("/metrics", headers=METRICS_AUTH).get_data(as_text=True)
    found = re.search(r'^helpline_errors_total\{kind="safety_twiml"\} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_spoofed_leftmost_forwarded_host_is_refused(app_at):
    """One proxy that appends: the client's own X-Forwarded-Host stays leftmost and must not count."""
    trusted = app_at(trust_proxy=1)
    spoofed = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "attacker.example, helpline.example.org"}
    for_attacker = signature("https://attacker.example/voice", PARAMS)
    assert trusted.post("/voice", data=PARAMS,
                        headers={**spoofed, "X-Twilio-Signature": for_attacker}).status_code == 403
    for_us = signature("https://helpline.example.org/voice", PARAMS)
    assert trusted.post("/voice", data=PARAMS,
                        headers={**spoofed, "X-Twilio-Signature": for_us}).status_code == 200


def test_with_two_proxies_the_outer_proxys_host_counts(app_at):
    trusted = app_at(trust_proxy=2)
    headers = {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "attacker.example, helpline.example.org, internal:8080"}
    for_us = signature("https://helpline.example.org/voice", PARAMS)
    assert trusted.post("/voice", data=PARAMS, headers={**headers, "X-Twilio-Signature": for_us}).status_code == 200
    for_inner = signature("http://internal:8080/voice", PARAMS)
    assert trusted.post("/voice", data=PARAMS, headers={**headers, "X-Twilio-Signature": for_inner}).status_code == 403


@pytest.mark.parametrize("value, proxies", [("", 0), ("0", 0), ("1", 1), ("true", 1), ("yes", 1), ("2", 2), ("no", 0)])
def test_trust_proxy_is_a_number_of_proxies(value, proxies):
    from router.settings import load_settings

    assert load_settings({"TRUST_PROXY": value}).trust_proxy == proxies


# ------------------------------------------------------------------ URLs Twilio may encode (issue 17, item 8)
@pytest.mark.parametrize("requested, signed", [
    ("/voice/key?at=closed%3Agalop&lang=en", "/voice/key?at=closed:galop&lang=en"),
    ("/voice/key?at=closed:galop&lang=en", "/voice/key?at=closed%3Agalop&lang=en"),
    ("/voice/key?at=closed%3agalop&lang=en", "/voice/key?at=closed:galop&lang=en"),
], ids=["requested-encoded", "signed-encoded", "lower-case-hex"])
def test_the_signature_is_checked_against_both_forms_twilio_may_use(client, requested, signed):
    """Twilio may request a URL with `:` percent-encoded while signing the plain form, or the reverse
    (https://www.twilio.com/docs/api/errors/57012: "URL-encoded characters")."""
    headers = {"X-Twilio-Signature": signature("http://localhost" + signed, PARAMS)}
    assert client.post(requested, data=PARAMS, headers=headers).status_code == 200
    other = {"X-Twilio-Signature": signature("http://localhost/voice/key?at=closed:karma_nirvana&lang=en", PARAMS)}
    assert client.post(requested, data=PARAMS, headers=other).status_code == 403
    delimiter = {"X-Twilio-Signature": signature("http://localhost/voice/key?at=closed:galop%26lang=en", PARAMS)}
    assert client.post("/voice/key?at=closed:galop&lang=en", data=PARAMS, headers=delimiter).status_code == 403


def test_action_urls_hold_only_characters_that_never_need_encoding(app_at):
    """Every URL the app gives Twilio (Gather and Dial actions, Redirects) in the journeys that reach
    every kind of place: letters, digits, `_ . -`, and only `/ ? = &` as delimiters (no `:` in at=)."""
    import re

    from tests.conftest import WEEKDAY_NOON, WEEKNIGHT_3AM
    from tests.support import Call

    urls = []

    def collect(call):
        for element in call.twiml.iter():
            if element.tag in ("Gather", "Dial") and element.get("action"):
                urls.append(element.get("action"))
            if element.tag == "Redirect":
                urls.append(element.text.strip())
        return call

    night = Call(app_at(WEEKNIGHT_3AM))
    collect(night.start()), collect(night.press("5")), collect(night.press("2"))   # window, closed, when
    collect(night.silence())
    day = Call(app_at(WEEKDAY_NOON))
    collect(day.start()), collect(day.press("3")), collect(day.dial_ends("busy"))  # dial, unanswered
    collect(Call(app_at(WEEKDAY_NOON)).start().press("1").dial_ends("completed"))  # after a call
    collect(Call(app_at(WEEKDAY_NOON)).start().press("9").press("9"))               # the police advice
    assert any("at=closed.nspcc_helpline" in url for url in urls), urls
    assert any("at=unanswered.galop" in url for url in urls) and any("at=police" in url for url in urls)
    plain = re.compile(r"^/voice(/[a-z-]+)?(\?[A-Za-z0-9_.-]+=[A-Za-z0-9_.-]*(&[A-Za-z0-9_.-]+=[A-Za-z0-9_.-]*)*)?$")
    assert [url for url in urls if not plain.match(url)] == []
