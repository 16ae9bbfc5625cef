"""Property-based tests over every webhook's parameters: whatever Twilio could send, signed, gets an
answer Twilio can read, and the answer never carries what the person typed or their number.

For each endpoint (/voice, /voice/key, /voice/silence, /voice/dialled, /voice/status, /sms, /sms/status)
hypothesis draws the form (any Digits, Body, From, sids and statuses, fields missing, fields repeated,
unknown fields) and the query (any `at`, `lang`, `n`, `service`), signs it exactly as Twilio's
RequestValidator does (over every value of a repeated field), and posts it to the real app on the real
Redis. A signed request must get 200 (or 204 for a status callback) and well-formed TwiML whose
structure is only what the app itself writes: no element, attribute or URL an input could inject, and
no input text or caller number anywhere in the reply.
"""
from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import phonenumbers
import pytest
import redis
from hypothesis import HealthCheck, example, given, settings, strategies as st
from werkzeug.datastructures import MultiDict

from router.definition import phone
from router.web import last_resort as safety
from router.web.app import create_app
from tests.conftest import (BOXING_DAY_SUBSTITUTE_NOON, CHRISTMAS_3AM, WEEKDAY_NOON, WEEKNIGHT_3AM, Clock,
                            copy_flows, make_settings)
from tests.support import ACCOUNT_SID, BASE, HELPLINE_NUMBER, MOBILE, signature

FUZZ = settings(max_examples=100, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ------------------------------------------------------------------------------------------ inputs
INJECTIONS = [
    "</Message><Redirect>http://evil.example/x</Redirect><Message>",
    "</Say><Dial><Number>+449098790000</Number></Dial><Say>",
    "<![CDATA[</Response>]]>",
    "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>",
    "&lt;Hangup/&gt; &amp; &#x3C;Play&#x3E;http://evil.example/a.mp3&#x3C;/Play&#x3E;",
    "\" action=\"http://evil.example/steal\" x=\"",
    "' onload='x",
    "{key} {label} {number} %s %(number)s {0}",
    "\x00\x01\x08\x0b\x0c\x1b[31m\x7f\ufffe\uffff",
]
WITHHELD = ["Anonymous", "anonymous", "ANONYMOUS", "Restricted", "Unknown", "Private", "Blocked",
            "Unavailable", "+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253",
            "266696687", "", " "]
FOREIGN = ["+12025550123", "+33612345678", "+4915112345678", "+8613800138000", "+61412345678",
           "+353861234567", "+14155550100"]
STATUSES = ["queued", "sending", "sent", "delivered", "undelivered", "failed", "received", "read",
            "canceled", "accepted", "scheduled", "completed", "busy", "no-answer", "in-progress", "ringing"]

any_text = st.text(max_size=200)                                      # every code point but surrogates
long_text = st.builds(lambda piece, times: (piece * times)[:2000], st.text(min_size=1, max_size=12),
                      st.integers(100, 400))
xml_like = st.builds(lambda before, attack, after: before + attack + after,
                     st.text(max_size=20), st.sampled_from(INJECTIONS), st.text(max_size=20))
control = st.text(alphabet=st.characters(max_codepoint=0x9f, categories=["Cc"]), min_size=1, max_size=20)
texts = st.one_of(any_text, long_text, xml_like, control)

uk_mobile = st.integers(0, 999_999).map(lambda n: f"+447400{n:06d}")
uk_mobile_national = st.integers(0, 999_999).map(lambda n: f"07400 {n:06d}")
uk_landline = st.integers(0, 9_999).map(lambda n: f"+44207123{n:04d}")
malformed = st.one_of(st.text(alphabet="+0123456789 ()-#*", max_size=25), any_text)
senders = st.one_of(st.sampled_from(WITHHELD), st.sampled_from(FOREIGN), uk_mobile, uk_mobile_national,
                    uk_landline, malformed, xml_like)

keys = st.one_of(st.sampled_from(list("0123456789*#") + ["55", "", " 1 ", "11", "1#", "w", "١", "²", "１"]),
                 texts)
sids = st.one_of(st.from_regex(r"\A(CA|SM|MM)[0-9a-f]{32}\Z"), texts)
statuses = st.one_of(st.sampled_from(STATUSES), texts)

# Places a caller can be at (so the fuzz reaches deep states), and anything else a tampered URL holds.
PLACES = ["main", "domestic_abuse", "men", "lgbt", "other_helplines", "closed:galop", "unanswered:galop",
          "after:national_domestic_abuse_helpline", "consent:mens_advice_line", "when:galop",
          "info:karma_nirvana", "when:no_such_service", "consent:", ":galop", "::", "when:galop:x"]
places = st.one_of(st.sampled_from(PLACES), texts)
langs = st.one_of(st.sampled_from(["en", "cy", "EN", "fr", ""]), texts)
attempts = st.one_of(st.sampled_from(["1", "2", "3", "0", "-1", "", "99999999999999999999", "1.5",
                                      "²", "١", "𝟙", "9" * 5000]), texts)
services = st.one_of(st.sampled_from(["galop", "national_domestic_abuse_helpline", "", "nope"]), texts)
times = st.sampled_from([WEEKDAY_NOON, WEEKNIGHT_3AM, CHRISTMAS_3AM, BOXING_DAY_SUBSTITUTE_NOON])

CALL_FIELDS = {"CallSid": sids, "AccountSid": st.just(ACCOUNT_SID), "From": senders,
               "To": st.just(HELPLINE_NUMBER), "CallStatus": statuses, "Direction": st.just("inbound")}
ENDPOINT_FIELDS = {
    "/voice": CALL_FIELDS,
    "/voice/key": {**CALL_FIELDS, "Digits": keys},
    "/voice/silence": CALL_FIELDS,
    "/voice/dialled": {**CALL_FIELDS, "DialCallStatus": statuses, "DialCallSid": sids},
    "/voice/status": {**CALL_FIELDS, "CallDuration": st.text(alphabet="0123456789", max_size=6)},
    "/sms": {"MessageSid": sids, "SmsSid": sids, "AccountSid": st.just(ACCOUNT_SID), "From": senders,
             "To": st.just(HELPLINE_NUMBER), "Body": texts, "NumMedia": st.sampled_from(["0", "1", "x"])},
    "/sms/status": {"MessageSid": sids, "SmsSid": sids, "MessageStatus": statuses, "SmsStatus": statuses,
                    "AccountSid": st.just(ACCOUNT_SID), "From": st.just(HELPLINE_NUMBER), "To": senders,
                    "ErrorCode": st.sampled_from(["30003", "30008", ""])},
}
QUERY = {"/voice/key": {"at": places, "lang": langs}, "/voice/silence": {"at": places, "lang": langs, "n": attempts},
         "/voice/dialled": {"service": services, "lang": langs}}


@st.composite
def forms(draw, fields: dict) -> MultiDict:
    """Any subset of the fields (missing ones left out), some repeated with other values, maybe extras."""
    present = draw(st.fixed_dictionaries({}, optional=fields))
    pairs = list(present.items())
    names = sorted(fields)
    for name in draw(st.lists(st.sampled_from(names), max_size=3)):   # the same name twice or more
        pairs.append((name, draw(fields[name])))
    for name, value in draw(st.dictionaries(st.text(min_size=1, max_size=12), any_text, max_size=2)).items():
        pairs.append((name, value))
    return MultiDict(pairs)


@st.composite
def queries(draw, endpoint: str) -> str:
    spec = QUERY.get(endpoint, {})
    values = draw(st.fixed_dictionaries({}, optional=spec))
    if draw(st.booleans()) and spec:                      # a raw, oddly encoded query as a URL may hold
        raw = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789:=&%+;._-~!$'()*,", max_size=40))
        return f"?{raw}" if raw else ""
    return f"?{urlencode(values)}" if values else ""


# ------------------------------------------------------------------------------------------ the app
@pytest.fixture(scope="module")
def fuzz_app(redis_server, tmp_path_factory):
    if not redis_server.is_running():
        redis_server.start()
    redis.Redis.from_url(redis_server.url).flushall()
    clock = Clock(WEEKDAY_NOON)
    app = create_app(make_settings(redis_server.url, flows_dir=unlimited_flows(tmp_path_factory)), clock=clock)
    return app.test_client(), clock, app.extensions["router"].flows.current()


def unlimited_flows(tmp_path_factory):
    """The shipped flows with the per-sender and per-minute limits lifted: fuzzing sends hundreds of texts
    from a handful of senders (the limits themselves are proved in tests/test_texts_e2e.py)."""
    import yaml

    folder = copy_flows(tmp_path_factory.mktemp("fuzz-flows"))
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["limits"].update(replies_per_sender=1000, replies_per_minute=100_000, followups_per_minute=10_000,
                            followups_per_number_per_day=20)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    return folder


def post_signed_form(client, path: str, form: MultiDict):
    """Signed as Twilio's RequestValidator signs: the URL with its query, then every value of every name."""
    headers = {"X-Twilio-Signature": signature(BASE + path, form)}
    return client.post(path, data=form, headers=headers, base_url=BASE)


ALLOWED = {
    "voice": {"Response", "Gather", "Say", "prosody", "Redirect", "Dial", "Number", "Hangup", "Pause"},
    "sms": {"Response", "Message"},
    "status": {"Response"},
}
OWN_URL = re.compile(r"\A/(voice|sms)(/[a-z-]+)?(\?[A-Za-z0-9_.~%:&=+-]*)?\Z")
SERVICE_NUMBERS = {"+448082000247"}


def service_numbers(flows) -> set[str]:
    return SERVICE_NUMBERS | {s.e164 for s in flows.services.values()} | {HELPLINE_NUMBER}


def distinctive(value: str) -> bool:
    """Long enough that finding it in a reply can only mean it was copied there."""
    return len(value.strip()) >= 12


def check_answer(response, endpoint: str, form: MultiDict, query: str, flows) -> ET.Element | None:
    kind = "status" if endpoint.endswith("/status") else ("sms" if endpoint.startswith("/sms") else "voice")
    detail = f"{endpoint}{query} {form!r}"
    if kind == "status":
        assert response.status_code in {200, 204}, (response.status_code, detail)
        if response.status_code == 204 or not response.data:
            return None
    else:
        assert response.status_code == 200, (response.status_code, detail)
    assert response.mimetype in {"application/xml", "text/xml"}, detail
    raw = response.get_data(as_text=True)
    root = ET.fromstring(response.data)                                  # well-formed XML, or this raises
    assert root.tag == "Response", detail
    tags = {element.tag for element in root.iter()}
    assert tags <= ALLOWED[kind], (tags - ALLOWED[kind], detail)
    if kind == "sms":
        assert len(root.findall("Message")) == 1, detail
    for element in root.iter():
        for name, value in element.attrib.items():
            if name == "action":
                assert OWN_URL.match(value), (value, detail)
        if element.tag == "Redirect":
            assert OWN_URL.match(element.text or ""), (element.text, detail)
        if element.tag == "Number":
            assert element.text in service_numbers(flows), (element.text, detail)
    text = " ".join(root.itertext())
    for name, value in form.items(multi=True):
        if distinctive(value) and not (name in {"To", "From"} and value in service_numbers(flows)):
            assert value not in raw and value.strip() not in text, (name, value, detail)
    for value in form.getlist("From") + form.getlist("To"):
        number = phone.normalise_sender(value)
        if number and number not in service_numbers(flows):
            national = str(phonenumbers.parse(number).national_number)
            assert national not in re.sub(r"\D", "", raw), (value, detail)
    assert "evil" not in raw.lower() and "<Play" not in raw and "ENTITY" not in raw, detail
    return root


# ------------------------------------------------------------------------------------------ properties
def run(fuzz_app, endpoint: str, form: MultiDict, query: str, when) -> ET.Element | None:
    client, clock, flows = fuzz_app
    clock.now = when
    response = post_signed_form(client, endpoint + query, form)
    return check_answer(response, endpoint, form, query, flows)


@FUZZ
@given(form=forms(ENDPOINT_FIELDS["/voice"]), when=times)
@example(form=MultiDict([("From", "Anonymous"), ("From", MOBILE), ("CallSid", "CA" + "1" * 32)]),
         when=WEEKDAY_NOON)
def test_voice_answers_any_signed_call(fuzz_app, form, when):
    root = run(fuzz_app, "/voice", form, "", when)
    assert root.find("Gather") is not None, "a new call always hears the advice and the menu"


@FUZZ
@given(form=forms(ENDPOINT_FIELDS["/voice/key"]), query=queries("/voice/key"), when=times)
@example(form=MultiDict([("Digits", "1"), ("From", MOBILE)]), query="?at=main&lang=en", when=WEEKDAY_NOON)
@example(form=MultiDict([("Digits", "1"), ("Digits", "2"), ("From", MOBILE), ("CallSid", "CA" + "2" * 32)]),
         query="?at=when:galop&lang=cy", when=WEEKNIGHT_3AM)
@example(form=MultiDict([("Digits", INJECTIONS[1])]),
         query="?" + urlencode({"at": INJECTIONS[0], "lang": INJECTIONS[5]}), when=CHRISTMAS_3AM)
def test_voice_key_answers_any_keypress_at_any_place(fuzz_app, form, query, when):
    run(fuzz_app, "/voice/key", form, query, when)


@FUZZ
@given(form=forms(ENDPOINT_FIELDS["/voice/silence"]), query=queries("/voice/silence"), when=times)
@example(form=MultiDict([("From", MOBILE)]), query="?at=main&lang=en&n=2", when=WEEKDAY_NOON)
def test_voice_silence_answers_any_attempt(fuzz_app, form, query, when):
    run(fuzz_app, "/voice/silence", form, query, when)


@FUZZ
@given(form=forms(ENDPOINT_FIELDS["/voice/dialled"]), query=queries("/voice/dialled"), when=times)
@example(form=MultiDict([("DialCallStatus", "no-answer"), ("From", MOBILE)]),
         query="?service=galop&lang=en", when=WEEKDAY_NOON)
def test_voice_dialled_answers_any_dial_result(fuzz_app, form, query, when):
    run(fuzz_app, "/voice/dialled", form, query, when)


@FUZZ
@given(form=forms(ENDPOINT_FIELDS["/voice/status"]), when=times)
def test_voice_status_accepts_any_callback(fuzz_app, form, when):
    run(fuzz_app, "/voice/status", form, "", when)


@FUZZ
@given(form=forms(ENDPOINT_FIELDS["/sms"]), when=times)
@example(form=MultiDict([("Body", "</Message><Redirect>http://evil</Redirect>"), ("From", MOBILE),
                         ("MessageSid", "SM" + "3" * 32)]), when=WEEKDAY_NOON)
@example(form=MultiDict([("Body", "STOP"), ("Body", "hello there, it is me again"), ("From", MOBILE)]),
         when=WEEKDAY_NOON)
@example(form=MultiDict([("Body", "x" * 1600 + "\x00"), ("From", "")]), when=CHRISTMAS_3AM)
def test_sms_answers_any_text_without_echoing_it(fuzz_app, form, when):
    run(fuzz_app, "/sms", form, "", when)


@settings(FUZZ, max_examples=100)
@given(steps=st.lists(st.tuples(st.one_of(st.sampled_from(["hi", "1", "2", "3", "8", "0", "9", "STOP", "Cymraeg",
                                                             "MENU", " 2. "]), texts),
                                st.booleans()), min_size=1, max_size=6),
       sender=st.one_of(uk_mobile, st.sampled_from(WITHHELD[:3]), uk_landline), when=times)
def test_sms_conversations_of_any_replies_stay_well_formed(fuzz_app, steps, sender, when):
    """Conversations, not single texts: state in Redis carries over, retried MessageSids included."""
    last_sid = None
    for n, (body, retry) in enumerate(steps):
        fresh = "SM" + hashlib.sha256(f"{sender}|{n}|{body}".encode()).hexdigest()[:32]
        sid = last_sid if (retry and last_sid) else fresh
        last_sid = sid
        form = MultiDict([("MessageSid", sid), ("From", sender), ("To", HELPLINE_NUMBER), ("Body", body)])
        run(fuzz_app, "/sms", form, "", when)


@FUZZ
@given(form=forms(ENDPOINT_FIELDS["/sms/status"]), when=times)
def test_sms_status_accepts_any_callback(fuzz_app, form, when):
    run(fuzz_app, "/sms/status", form, "", when)


@settings(FUZZ, max_examples=60)
@given(endpoint=st.sampled_from(sorted(ENDPOINT_FIELDS)), data=st.data())
def test_a_signature_over_anything_else_is_refused(fuzz_app, endpoint, data):
    """The same fuzzed requests, with the signature made for other params or another URL: 403."""
    client, _, _ = fuzz_app
    form = data.draw(forms(ENDPOINT_FIELDS[endpoint]))
    query = data.draw(queries(endpoint))
    tampered = MultiDict(form)
    how = data.draw(st.sampled_from(["add", "url", "token"]))
    if how == "add":
        tampered.add(data.draw(st.sampled_from(["Digits", "Body", "From", "Extra"])), data.draw(st.text(min_size=1)))
        sig = signature(BASE + endpoint + query, form)
    elif how == "url":
        sig = signature(BASE + endpoint + query + ("&" if query else "?") + "at=main", form)
    else:
        sig = signature(BASE + endpoint + query, form, token="not-the-token")
    response = client.post(endpoint + query, data=tampered, headers={"X-Twilio-Signature": sig}, base_url=BASE)
    if signature(BASE + endpoint + query, tampered) == sig:   # adding an existing (name, value) pair
        return
    assert response.status_code == 403, (endpoint, query, tampered)


def test_safety_documents_have_only_allowed_structure():
    documents = ((safety.VOICE_TWIML, "voice"), (safety.CONNECT_TWIML, "voice"), (safety.SMS_TWIML, "sms"))
    for document, kind in documents:
        tags = {element.tag for element in ET.fromstring(document).iter()}
        assert tags <= ALLOWED[kind], tags


@settings(FUZZ, max_examples=100)
@given(endpoint=st.sampled_from(sorted(set(ENDPOINT_FIELDS) - {"/voice/status", "/sms/status"})), data=st.data())
def test_no_input_makes_our_own_code_fail(fuzz_app, endpoint, data):
    """Stricter than 'valid TwiML': the safety net (which hides our own bugs) is never what answers."""
    client, clock, flows = fuzz_app
    form = data.draw(forms(ENDPOINT_FIELDS[endpoint]))
    query = data.draw(queries(endpoint))
    clock.now = data.draw(times)
    response = post_signed_form(client, endpoint + query, form)
    check_answer(response, endpoint, form, query, flows)
    body = response.get_data(as_text=True)
    assert body not in {safety.VOICE_TWIML, safety.SMS_TWIML}, f"an internal error for {endpoint}{query} {form!r}"


@pytest.mark.parametrize("attempt", ["²", "9" * 5000])
def test_a_silence_counter_no_digit_parser_reads_is_not_an_internal_error(fuzz_app, attempt):
    client, clock, flows = fuzz_app
    clock.now = WEEKDAY_NOON
    query = "?" + urlencode({"at": "main", "lang": "en", "n": attempt})
    response = post_signed_form(client, "/voice/silence" + query, MultiDict([("From", MOBILE)]))
    check_answer(response, "/voice/silence", MultiDict([("From", MOBILE)]), query, flows)
    assert response.get_data(as_text=True) != safety.VOICE_TWIML, "answered by the safety net"
