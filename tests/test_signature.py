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


def test_healthz_answers_without_a_signature_and_tells_anyone_only_its_status(client):
    """Issue 21: /healthz told anyone the diversions in force and the worker pids. Publicly it says
    status (and why, and that the host is not pinned); the details need the metrics token."""
    from datetime import datetime, timedelta, timezone

    from router.live import Diversion

    store = client.application.extensions["router"].flows
    store.set_diversions({"galop": Diversion("galop", "national_domestic_abuse_helpline",
                                             datetime.now(timezone.utc) + timedelta(hours=1))})
    public = {"status": "ok", "note": "host not pinned: set PUBLIC_BASE_URL or ALLOWED_HOSTS"}
    assert client.get("/healthz").get_json() == public
    assert client.get("/healthz", headers={"Authorization": "Bearer wrong"}).get_json() == public
    body = client.get("/healthz", headers=METRICS_AUTH).get_json()
    assert body["status"] == "ok" and len(body["flows_version"]) == 12 and body["redis"] == "ok"
    assert "pid" in body and "galop" in body["diversions"]


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


def test_allowed_hosts_refuse_a_request_signed_for_another_app_on_the_account(app_at):
    """Issue 21: without PUBLIC_BASE_URL the Host header was believed, so a request Twilio signed for
    another app on the same account (its own host) was accepted here. ALLOWED_HOSTS pins the host."""
    elsewhere = "https://another-app.example.com"
    pinned = app_at(allowed_hosts=("helpline.example.org",))
    assert post_signed(pinned, "/voice", PARAMS, base=elsewhere).status_code == 403
    assert post_signed(pinned, "/voice", PARAMS, base="https://helpline.example.org").status_code == 200
    assert post_signed(app_at(public_base_url="https://helpline.example.org"), "/voice", PARAMS,
                       base=elsewhere).status_code == 403
    open_ = app_at()  # neither: the contract's loopback checks must still be answered, and /healthz says so
    assert post_signed(open_, "/voice", PARAMS, base=elsewhere).status_code == 200
    assert "not pinned" in open_.get("/healthz").get_json()["note"]
    assert "note" not in pinned.get("/healthz").get_json()


def test_gunicorn_believes_no_forwarded_header_without_trust_proxy(redis_url):
    """Issue 21: gunicorn believed X-Forwarded-Proto from 127.0.0.1 with TRUST_PROXY off (its own
    forwarded_allow_ips), so a request signed for https:// was accepted over plain http."""
    from types import SimpleNamespace

    import requests

    from tests.processes import GunicornWeb, worker_env
    from tests.support import ACCOUNT_SID

    twilio = SimpleNamespace(account_sid=ACCOUNT_SID, auth_token=TOKEN, url="http://127.0.0.1:9")
    web = GunicornWeb(worker_env(redis_url, twilio, WEB_CONCURRENCY="1")).start()
    try:
        plain = signature(f"{web.url}/voice", PARAMS)
        https = signature(f"https://127.0.0.1:{web.port}/voice", PARAMS)
        assert requests.post(web.url + "/voice", data=PARAMS, timeout=10,
                             headers={"X-Twilio-Signature": plain}).status_code == 200
        for header in ("X-Forwarded-Proto", "X-Forwarded-Ssl", "X-Forwarded-Protocol"):
            value = "on" if header == "X-Forwarded-Ssl" else "https"
            response = requests.post(web.url + "/voice", data=PARAMS, timeout=10,
                                     headers={"X-Twilio-Signature": https, header: value})
            assert response.status_code == 403, header
    finally:
        web.stop()


def test_healthz_public_reasons_are_short():
    from router.web.app import public_reason

    assert public_reason("the live folder is refused: serving release 3 from the history") == \
        "the live folder is refused"
    assert public_reason("the 24-hour line national_domestic_abuse_helpline is diverted to galop") == \
        "the 24-hour line national_domestic_abuse_helpline is diverted"
