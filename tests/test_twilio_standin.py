"""Tests of the Twilio stand-in itself (tests/twilio_standin).

The app's tests trust the stand-in to answer like Twilio, so these tests drive it with the real
``twilio`` client and check every JSON body it returns against Twilio's own OpenAPI description
(vendored in tests/twilio_standin/openapi/). Errors are checked against Twilio's documented error shape,
which that description does not contain.

Nothing here sleeps to synchronise: conditions are polled with a deadline (``wait_for``).
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import re
import select
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from jsonschema import Draft202012Validator, FormatChecker
from openapi_schema_validator import OAS30Validator
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator

from tests.twilio_standin import DEFAULT_SERVICE_SID, StandinControl, TwilioStandin, client_for, wait_for

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "standin-test-auth-token"
OUR_NUMBER = "+447700900000"   # a UK mobile: the only kind of UK number that can send texts
CALLER = "+447700900123"
SPEC_PATH = Path(__file__).parent / "twilio_standin" / "openapi" / "twilio_api_v2010.json"
REPO_ROOT = Path(__file__).resolve().parent.parent

TWILIO_ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string", "minLength": 1},
        "more_info": {"type": "string", "pattern": r"^https://www\.twilio\.com/docs/errors/\d+$"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
    },
}


# --------------------------------------------------------------------------------------------------
# Checking responses against Twilio's OpenAPI description


def _format_checker() -> FormatChecker:
    """Only the formats whose meaning matters here; relative ``uri`` values are what Twilio sends."""
    checker = FormatChecker(formats=())
    rfc2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")
    checker.checks("date-time-rfc-2822")(
        lambda v: not isinstance(v, str) or bool(rfc2822.match(v) and email.utils.parsedate_to_datetime(v)))
    # E.164 (digits hidden as X once Message Redaction obfuscated it), a short code or an alphanumeric
    # sender ID: the field's own description lists all three
    checker.checks("phone-number")(lambda v: not isinstance(v, str) or bool(
        re.match(r"^(\+[1-9][\dX]{6,14}|\d{5,6}|(?=.*[A-Za-z])[A-Za-z0-9 -]{1,11})$", v)))
    checker.checks("currency")(lambda v: not isinstance(v, str) or bool(re.match(r"^[A-Z]{3}$", v)))
    return checker


class SpecChecker:
    """Validates what the stand-in answered against the operation's response in Twilio's spec."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.formats = _format_checker()
        self.operations = []
        for template, operations in spec["paths"].items():
            parts = re.split(r"\{[^}]+\}", template)
            self.operations.append((re.compile("[^/]+".join(map(re.escape, parts))), operations))
        self.checked: list[tuple[str, str, int]] = []

    def check(self, method: str, url: str, status: int, text: str) -> None:
        path = urlsplit(url).path
        if status >= 400:
            self._check_error(status, text)
        else:
            schema = self._response_schema(method, path, status)
            if schema is None:
                assert text == "", f"{method} {path} {status} must have an empty body"
            else:
                self.check_schema(json.loads(text), schema)
        self.checked.append((method, path, status))

    def check_schema(self, instance: object, schema: dict) -> None:
        root = {**schema, "components": self.spec["components"]}
        OAS30Validator(root, format_checker=self.formats).validate(instance)
        self._check_exact_properties(instance, schema)

    def component(self, name: str) -> dict:
        return {"$ref": f"#/components/schemas/{name}"}

    def properties(self, schema: dict) -> set[str]:
        return set(self._resolve(schema)["properties"])

    def _response_schema(self, method: str, path: str, status: int) -> dict | None:
        for regex, operations in self.operations:
            if regex.fullmatch(path):
                response = operations[method.lower()]["responses"][str(status)]
                content = response.get("content")
                return content["application/json"]["schema"] if content else None
        raise AssertionError(f"{method} {path} is not in Twilio's API description")

    def _resolve(self, schema: dict) -> dict:
        while "$ref" in schema:
            schema = self.spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def _check_exact_properties(self, instance: object, schema: dict) -> None:
        """Twilio sends every documented field (null when empty) and nothing else; so must we."""
        schema = self._resolve(schema)
        if isinstance(instance, dict) and "properties" in schema:
            assert set(instance) == set(schema["properties"]), (
                f"fields differ from Twilio's: extra {set(instance) - set(schema['properties'])}, "
                f"missing {set(schema['properties']) - set(instance)}")
            for name, value in instance.items():
                self._check_exact_properties(value, schema["properties"][name])
        elif isinstance(instance, list) and "items" in schema:
            for item in instance:
                self._check_exact_properties(item, schema["items"])

    @staticmethod
    def _check_error(status: int, text: str) -> None:
        body = json.loads(text)
        Draft202012Validator(TWILIO_ERROR_SCHEMA).validate(body)
        assert body["status"] == status
        assert body["more_info"].endswith(f"/{body['code']}")


class RecordingHttpClient(TwilioHttpClient):
    """The twilio client's own HTTP client, keeping every exchange so each body can be validated."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[str, str, int, str]] = []

    def request(self, method, url, *args, **kwargs):
        response = super().request(method, url, *args, **kwargs)
        self.exchanges.append((method, url, response.status_code, response.text))
        return response


# --------------------------------------------------------------------------------------------------
# A receiver for status callbacks


class CallbackSink:
    """A tiny web app receiving status callbacks; paths starting /fail answer 500."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
                sink.received.append({
                    "url": f"http://127.0.0.1:{sink.port}{self.path}",
                    "form": {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()},
                    "signature": self.headers.get("X-Twilio-Signature"),
                })
                self.send_response(500 if self.path.startswith("/fail") else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01},
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def statuses(self, sid: str) -> list[str]:
        return [r["form"]["MessageStatus"] for r in self.received if r["form"]["MessageSid"] == sid]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def spec() -> SpecChecker:
    return SpecChecker(json.loads(SPEC_PATH.read_text()))


@pytest.fixture
def recorder(spec: SpecChecker):
    """Every response the twilio client receives is validated against the spec when the test ends."""
    http = RecordingHttpClient()
    yield http
    for exchange in http.exchanges:
        spec.check(*exchange)


@pytest.fixture
def make_standin():
    started: list[TwilioStandin] = []

    def make(**options) -> TwilioStandin:
        standin = TwilioStandin(ACCOUNT_SID, AUTH_TOKEN, **{"step_delay": 0.01, **options}).start()
        standin.add_phone_number(OUR_NUMBER)  # Twilio sends only from numbers the account owns (errors/21606)
        started.append(standin)
        return standin

    yield make
    for standin in started:
        standin.stop()


@pytest.fixture
def standin(make_standin) -> TwilioStandin:
    return make_standin()


@pytest.fixture
def client(standin, recorder):
    return client_for(standin, http_client=recorder)


@pytest.fixture
def sink():
    receiver = CallbackSink()
    yield receiver
    receiver.close()


def send(client, to: str = CALLER, body: str = "hello", **kwargs):
    return client.messages.create(to=to, from_=OUR_NUMBER, body=body, **kwargs)


def rest_error(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def raw(standin, method: str, path: str, auth=(ACCOUNT_SID, AUTH_TOKEN), **kwargs) -> requests.Response:
    url = f"{standin.url}/2010-04-01/Accounts/{ACCOUNT_SID}/{path}"
    return requests.request(method, url, auth=auth, timeout=5, **kwargs)


# --------------------------------------------------------------------------------------------------
# Sending texts: lifecycle and status callbacks


def test_message_moves_through_lifecycle_and_posts_signed_callbacks(standin, client, sink):
    message = send(client, status_callback=sink.url("/twilio/status?attempt=1"))

    assert message.status == "queued"
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert (message.direction, message.num_segments, message.from_) == ("outbound-api", "1", OUR_NUMBER)
    wait_for(lambda: sink.statuses(message.sid) == ["sending", "sent", "delivered"],
             description="callbacks for every status after the initial one")

    validator = RequestValidator(AUTH_TOKEN)
    for callback in sink.received:
        assert validator.validate(callback["url"], callback["form"], callback["signature"])
        assert callback["form"] == {
            "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "From": OUR_NUMBER, "To": CALLER,
            "MessageSid": message.sid, "SmsSid": message.sid,
            "MessageStatus": callback["form"]["MessageStatus"], "SmsStatus": callback["form"]["MessageStatus"],
        }
    fetched = client.messages(message.sid).fetch()
    assert fetched.status == "delivered"
    assert fetched.date_sent is not None and fetched.price is not None
    assert standin.message(message.sid)["status_history"] == ["queued", "sending", "sent", "delivered"]


@pytest.mark.parametrize("outcome, error_code", [("undelivered", 30003), ("failed", 30008)])
def test_configured_destination_ends_in_error_with_code(standin, client, sink, outcome, error_code):
    standin.set_outcome(CALLER, outcome)
    message = send(client, status_callback=sink.url("/status"))

    final = wait_for(lambda: [r for r in sink.received if r["form"]["MessageStatus"] == outcome],
                     description=f"{outcome} callback")[0]
    assert final["form"]["ErrorCode"] == str(error_code)
    assert client.messages(message.sid).fetch().error_code == error_code


def test_callback_failures_are_recorded_and_lifecycle_continues(standin, client, sink):
    failing = send(client, status_callback=sink.url("/fail"))
    refused = send(client, status_callback="http://127.0.0.1:9/status")  # discard port: refused

    wait_for(lambda: len(standin.callback_log) == 6, description="all six callbacks attempted")
    log = standin.callback_log
    assert {e["status_code"] for e in log if e["message_sid"] == failing.sid} == {500}
    assert all(e["error"] and not e["ok"] for e in log if e["message_sid"] == refused.sid)
    assert standin.message(refused.sid)["status"] == "delivered"


def test_retention_options_and_params_are_recorded(standin, client):
    standin.configure(message_redaction=True)
    message = send(client, content_retention="discard", address_retention="obfuscate")

    recorded = standin.sent_messages()[0]
    assert recorded["sid"] == message.sid
    assert (recorded["content_retention"], recorded["address_retention"]) == ("discard", "obfuscate")
    assert recorded["params"]["Body"] == "hello"
    assert standin.request_log[0] | {"time": None} == {
        "time": None, "method": "POST", "path": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        "query": {}, "form": recorded["params"], "status": 201, "code": None}


def test_messaging_service_message_starts_accepted_and_gets_a_sender(standin, client):
    message = client.messages.create(to=CALLER, messaging_service_sid=DEFAULT_SERVICE_SID, body="hi")

    assert (message.status, message.from_, message.num_segments) == ("accepted", None, "0")
    delivered = standin.wait_for_status(message.sid, "delivered")
    assert delivered["status_history"] == ["accepted", "queued", "sending", "sent", "delivered"]
    assert delivered["from"] == standin.messaging_service_from


def test_manual_mode_holds_messages_until_advanced(make_standin, recorder):
    standin = make_standin(auto_advance=False)
    client = client_for(standin, http_client=recorder)
    first, second = send(client), send(client, body="two")

    assert standin.advance(first.sid, to="sent") == "sent"
    assert client.messages(first.sid).fetch().status == "sent"
    assert client.messages(second.sid).fetch().status == "queued"
    assert standin.advance_all() == {first.sid: "delivered", second.sid: "sending"}
    assert standin.advance_all(to="delivered") == {second.sid: "delivered"}


@pytest.mark.parametrize("kwargs, code", [
    ({"to": "07700900123", "from_": OUR_NUMBER, "body": "x"}, 21211),
    ({"to": CALLER, "from_": OUR_NUMBER, "body": ""}, 21602),
    ({"to": CALLER, "body": "x"}, 21603),
    ({"to": CALLER, "from_": OUR_NUMBER, "body": "x" * 1601}, 21617),
])
def test_invalid_create_answers_twilio_error_and_creates_nothing(standin, client, kwargs, code):
    error = rest_error(lambda: client.messages.create(**kwargs))

    assert (error.status, error.code) == (400, code)
    assert standin.sent_messages() == []


def test_missing_to_answers_21604(standin):
    response = raw(standin, "POST", "Messages.json", data={"From": OUR_NUMBER, "Body": "x"})

    assert response.status_code == 400
    assert response.json()["code"] == 21604


def test_redaction_needs_a_final_message(make_standin, recorder):
    standin = make_standin(auto_advance=False)
    client = client_for(standin, http_client=recorder)
    message = send(client)

    assert rest_error(lambda: client.messages(message.sid).update(body="")).code == 20009
    standin.advance(message.sid, to="delivered")
    assert client.messages(message.sid).update(body="").body == ""


# --------------------------------------------------------------------------------------------------
# Deleting messages


def test_delete_final_message_answers_204_and_it_is_gone(standin, client):
    message = send(client)
    standin.wait_for_status(message.sid, "delivered")

    assert client.messages(message.sid).delete() is True
    assert standin.deleted_sids == [message.sid]
    assert standin.message(message.sid)["deleted"] is True
    assert rest_error(lambda: client.messages(message.sid).fetch()).code == 20404
    assert client.messages.list() == []


def test_delete_while_being_processed_answers_409_20009(make_standin, recorder):
    standin = make_standin(auto_advance=False)
    client = client_for(standin, http_client=recorder)
    message = send(client)

    for status in ("queued", "sending", "sent"):
        assert standin.message(message.sid)["status"] == status
        error = rest_error(lambda: client.messages(message.sid).delete())
        assert (error.status, error.code) == (409, 20009)
        standin.advance(message.sid)
    assert client.messages(message.sid).delete() is True


def test_message_held_in_sent_cannot_be_deleted_until_delivered(standin, client):
    standin.set_outcome(CALLER, "sent")
    message = send(client)
    standin.wait_for_status(message.sid, "sent")

    assert rest_error(lambda: client.messages(message.sid).delete()).code == 20009
    assert standin.advance(message.sid) == "delivered"
    assert client.messages(message.sid).delete() is True


def test_delete_unknown_or_already_deleted_answers_404_20404(standin, client):
    sid = standin.add_inbound_message(CALLER, OUR_NUMBER, "help")
    client.messages(sid).delete()

    for unknown in (sid, "SM" + "f" * 32):
        error = rest_error(lambda: client.messages(unknown).delete())
        assert (error.status, error.code) == (404, 20404)


def test_inbound_message_is_received_and_deletable_at_once(standin, client):
    sid = standin.add_inbound_message(CALLER, OUR_NUMBER, "I need help")

    fetched = client.messages(sid).fetch()
    assert (fetched.direction, fetched.status, fetched.from_, fetched.body) == (
        "inbound", "received", CALLER, "I need help")
    assert client.messages(sid).delete() is True
    assert standin.deleted_messages[0]["sid"] == sid


# --------------------------------------------------------------------------------------------------
# Authentication and injected faults


def test_wrong_credentials_answer_401_20003(standin, recorder):
    wrong = client_for(standin, auth_token="not-the-token", http_client=recorder)

    error = rest_error(lambda: send(wrong))
    assert (error.status, error.code) == (401, 20003)
    assert raw(standin, "GET", "Messages.json", auth=None).json()["code"] == 20003
    other_account = f"{standin.url}/2010-04-01/Accounts/AC{'9' * 32}/Messages.json"
    assert requests.get(other_account, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).status_code == 401
    assert standin.sent_messages() == []


def test_injected_500_fails_matching_requests_without_applying_them(standin, client):
    standin.inject(method="POST", path_regex=r"/Messages\.json$", status=500, count=2)

    for _ in range(2):
        error = rest_error(lambda: send(client))
        assert (error.status, error.code) == (500, 20500)
    assert standin.sent_messages() == []
    assert send(client).status == "queued"
    assert [e["status"] for e in standin.request_log] == [500, 500, 201]


def test_injected_429_carries_code_20429_and_retry_after(standin, client):
    standin.inject(method="POST", path_regex=r"/Messages\.json$", status=429, count=2, retry_after=3)

    error = rest_error(lambda: send(client))
    assert (error.status, error.code) == (429, 20429)
    response = raw(standin, "POST", "Messages.json", data={"To": CALLER, "From": OUR_NUMBER, "Body": "x"})
    assert (response.status_code, response.headers["Retry-After"]) == (429, "3")
    assert standin.sent_messages() == []


def test_injected_fault_on_delete_keeps_the_message_unless_applied(standin, client):
    sid = standin.add_inbound_message(CALLER, OUR_NUMBER, "hi")
    standin.inject(method="DELETE", path_regex=r"/Messages/", status=503)

    assert rest_error(lambda: client.messages(sid).delete()).code == 20503
    assert standin.deleted_sids == []
    standin.inject(method="DELETE", path_regex=r"/Messages/", status=500, apply=True)  # response lost
    assert rest_error(lambda: client.messages(sid).delete()).status == 500
    assert standin.deleted_sids == [sid]


# --------------------------------------------------------------------------------------------------
# Listing and paging


def test_list_follows_every_page(standin, client, recorder):
    sids = [standin.add_inbound_message(f"+4477009000{i:02d}", OUR_NUMBER, f"text {i}") for i in range(7)]

    listed = client.messages.list(page_size=3)

    assert [m.sid for m in listed] == sids[::-1]  # newest first
    pages = [json.loads(text) for method, url, status, text in recorder.exchanges if method == "GET"]
    assert [len(p["messages"]) for p in pages] == [3, 3, 1]
    assert [p["page"] for p in pages] == [0, 1, 2]
    assert pages[-1]["next_page_uri"] is None and pages[0]["previous_page_uri"] is None
    assert [m.sid for m in client.messages.stream(page_size=2)] == sids[::-1]


def test_list_filters_by_to_from_and_date_sent(standin, client):
    inbound = standin.add_inbound_message(CALLER, OUR_NUMBER, "in")
    outbound = send(client, to="+447700900999")
    standin.wait_for_status(outbound.sid, "delivered")
    today = time.strftime("%Y-%m-%d", time.gmtime())

    assert [m.sid for m in client.messages.list(to=OUR_NUMBER)] == [inbound]
    assert [m.sid for m in client.messages.list(from_=OUR_NUMBER)] == [outbound.sid]
    assert len(client.messages.list(date_sent=today)) == 2
    assert client.messages.list(date_sent_before="2000-01-01") == []
    assert len(client.messages.list(date_sent_after=today)) == 2


def test_paging_survives_deleting_what_was_read(standin, client):
    sids = [standin.add_inbound_message(CALLER, OUR_NUMBER, str(i)) for i in range(5)]

    page = client.messages.page(page_size=2)
    seen = []
    while page is not None:
        for message in page:
            seen.append(message.sid)
            client.messages(message.sid).delete()
        page = page.next_page()

    assert seen == sids[::-1]
    assert standin.deleted_sids == sids[::-1]


# --------------------------------------------------------------------------------------------------
# Calls


def test_call_can_be_deleted_only_once_it_has_ended(standin, client):
    sid = standin.add_call(from_=CALLER, to=OUR_NUMBER, status="in-progress")

    assert re.fullmatch(r"CA[0-9a-f]{32}", sid)
    assert client.calls(sid).fetch().status == "in-progress"
    error = rest_error(lambda: client.calls(sid).delete())
    assert (error.status, error.code) == (409, 20009)

    standin.set_call_status(sid, "completed")
    assert [c.sid for c in client.calls.list(status="completed", to=OUR_NUMBER)] == [sid]
    assert client.calls(sid).delete() is True
    assert standin.deleted_call_sids == [sid]
    assert rest_error(lambda: client.calls(sid).fetch()).code == 20404
    assert rest_error(lambda: client.calls(sid).delete()).code == 20404


def test_calls_list_pages_and_filters(standin, client):
    ended = [standin.add_call(CALLER, OUR_NUMBER, status="completed") for _ in range(3)]
    live = standin.add_call("+447700900555", OUR_NUMBER, status="ringing")

    assert [c.sid for c in client.calls.list(page_size=2)] == [live, *ended[::-1]]
    assert [c.sid for c in client.calls.list(from_="+447700900555")] == [live]
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert len(client.calls.list(start_time_after=today)) == 3  # a ringing call has not started


# --------------------------------------------------------------------------------------------------
# The OpenAPI check, concurrency and the separate-process mode


def test_responses_match_twilio_openapi_description(standin, client, recorder, spec):
    """Exercises every shape (resources, list pages, empty pages, 204s, errors), then validates them."""
    call = standin.add_call(CALLER, OUR_NUMBER, status="completed")
    message = send(client)
    client.messages(message.sid).fetch()
    client.messages.list(page_size=1)
    client.messages.list(to="+15550000000")
    client.calls.list()
    client.calls(call).fetch()
    inbound = standin.add_inbound_message(CALLER, OUR_NUMBER, "é unicode ✓")
    client.messages(inbound).delete()
    rest_error(lambda: client.messages(inbound).fetch())

    for exchange in recorder.exchanges:
        spec.check(*exchange)
    assert {status for _, _, status, _ in recorder.exchanges} >= {200, 201, 204, 404}
    message_schema = spec.component("api.v2010.account.message")
    documented = spec.properties(message_schema)
    for snapshot in standin.messages.values():  # snapshots are the resource plus bookkeeping fields
        spec.check_schema({k: v for k, v in snapshot.items() if k in documented}, message_schema)


def test_concurrent_senders_are_served_safely(standin, client):
    def sender(n: int) -> None:
        own = client_for(standin)  # one client per thread, like separate workers
        for i in range(5):
            send(own, body=f"worker {n} text {i}")

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    sent = standin.sent_messages()
    assert len({m["sid"] for m in sent}) == 40
    wait_for(lambda: all(m["status"] == "delivered" for m in standin.sent_messages()),
             description="all 40 delivered")


# --------------------------------------------------------------------------------------------------
# HTTP/1.1: connections kept alive, as Twilio's API keeps them


AUTH_HEADER = {"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()}


def api_path(tail: str) -> str:
    return f"/2010-04-01/Accounts/{ACCOUNT_SID}/{tail}"


def test_the_twilio_client_keeps_one_connection_for_every_kind_of_answer(standin, client, recorder):
    """201, 200, a list page, 204 (no body) and 404 (an error body) all on one kept-alive connection."""
    inbound = standin.add_inbound_message(CALLER, OUR_NUMBER, "hi")
    message = send(client)
    client.messages(message.sid).fetch()
    client.messages.list(limit=5)
    client.messages(inbound).delete()
    assert rest_error(lambda: client.messages(inbound).fetch()).status == 404
    send(client, body="again")
    assert len(recorder.exchanges) == 6 and standin.connections_accepted == 1


def test_answers_are_framed_and_connection_close_is_honoured(standin):
    inbound = standin.add_inbound_message(CALLER, OUR_NUMBER, "hi")
    conn = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=5)
    conn.request("DELETE", api_path(f"Messages/{inbound}.json"), headers=AUTH_HEADER)
    deleted = conn.getresponse()
    assert (deleted.status, deleted.read(), deleted.getheader("Content-Length")) == (204, b"", None)
    conn.request("GET", api_path(f"Messages/{inbound}.json"), headers=AUTH_HEADER)
    missing = conn.getresponse()
    body = missing.read()
    assert missing.status == 404 and int(missing.getheader("Content-Length")) == len(body) > 0
    conn.request("GET", api_path("Messages.json"), headers={})  # no credentials: a 401, still framed
    refused = conn.getresponse()
    assert refused.status == 401 and int(refused.getheader("Content-Length")) == len(refused.read())
    assert not refused.will_close
    conn.close()
    assert standin.connections_accepted == 1

    with socket.create_connection(("127.0.0.1", standin.port), timeout=5) as sock:
        request = (f"GET {api_path('Messages.json')} HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: {AUTH_HEADER['Authorization']}\r\nConnection: close\r\n\r\n")
        sock.sendall(request.encode())
        received = b""
        while chunk := sock.recv(65536):  # returns b"" only once the stand-in has closed it
            received += chunk
    head, _, page = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"\r\nConnection: close" in head
    assert json.loads(page)["messages"] == []


def test_a_chunked_request_body_is_read_and_the_connection_stays_usable(standin):
    session = requests.Session()
    form = iter([f"To={quote(CALLER)}".encode(), f"&From={quote(OUR_NUMBER)}".encode(), b"&Body=chunked"])
    created = session.post(standin.url + api_path("Messages.json"), data=form, timeout=5, auth=(ACCOUNT_SID, AUTH_TOKEN),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert created.status_code == 201 and created.json()["body"] == "chunked"
    assert session.get(standin.url + api_path("Messages.json"), auth=(ACCOUNT_SID, AUTH_TOKEN),
                       timeout=5).status_code == 200
    assert standin.connections_accepted == 1


def test_a_stopped_standin_answers_nothing_on_a_kept_alive_connection(make_standin):
    standin = make_standin()
    conn = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=5)
    conn.request("GET", api_path("Messages.json"), headers=AUTH_HEADER)
    assert conn.getresponse().read()
    standin.stop()
    with pytest.raises((http.client.HTTPException, OSError)):
        conn.request("GET", api_path("Messages.json"), headers=AUTH_HEADER)
        conn.getresponse()


def test_separate_process_is_steered_through_the_control_api():
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.twilio_standin", "--port", "0", "--account-sid", ACCOUNT_SID,
         "--auth-token", AUTH_TOKEN, "--step-delay", "0.01"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "stand-in did not announce itself"
        line = process.stdout.readline().strip()
        assert re.fullmatch(r"LISTENING http://127\.0\.0\.1:\d+", line)
        url = line.split()[1]
        control = StandinControl(url)
        client = client_for(url, ACCOUNT_SID, AUTH_TOKEN)
        control.add_phone_number(OUR_NUMBER)

        inbound = control.add_inbound_message(CALLER, OUR_NUMBER, "from a worker's view")
        control.set_outcome("+447700900888", "undelivered")
        message = send(client, to="+447700900888")
        assert control.wait_for_status(message.sid, "undelivered")["error_code"] == 30003
        control.inject(method="DELETE", path_regex=r"/Messages/", status=500, count=1)
        assert rest_error(lambda: client.messages(inbound).delete()).status == 500
        client.messages(inbound).delete()
        assert control.deleted_sids == [inbound]

        call = control.add_call(CALLER, OUR_NUMBER)
        control.set_call_status(call, "completed")
        client.calls(call).delete()
        assert control.deleted_call_sids == [call]
        assert [(e["method"], e["status"]) for e in control.request_log] == [
            ("POST", 201), ("DELETE", 500), ("DELETE", 204), ("DELETE", 204)]
        with pytest.raises(KeyError):
            control.advance("SM" + "0" * 32)
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()


def test_control_api_over_http_matches_in_process_api(standin):
    control = StandinControl(standin.url)
    control.set_outcome(CALLER, "sent")
    sid = control.add_inbound_message(CALLER, OUR_NUMBER, "hi")

    assert control.messages[sid] == standin.messages[sid]
    assert control.state()["outcomes"] == {CALLER: "sent"}
    with pytest.raises(ValueError):
        control.set_outcome(CALLER, "lost")
    control.reset()
    assert standin.messages == {}
