"""A stateful local stand-in for Twilio's REST API (2010-04-01), for tests.

Why it exists: the app talks to Twilio through the official ``twilio`` client from the web process and
from Celery workers (other OS processes). Mocks inside one process cannot see those calls, and a
stateless mock (e.g. Prism) cannot play a message's lifecycle, so cannot answer the way Twilio does when
a worker deletes a message that is still being delivered. This server keeps state, moves messages through
Twilio's statuses on a timer, posts signed status callbacks, and answers with Twilio's JSON shapes and
error codes, so the app's real HTTP code paths are exercised.

Twilio facts it follows, and where they come from:

* Error bodies are ``{"code", "message", "more_info": "https://www.twilio.com/docs/errors/N", "status"}``
  (what twilio-python parses into ``TwilioRestException.code``).
* 401 / 20003 "Authenticate" for missing or wrong Basic credentials (twilio.com/docs/errors/20003); also
  for an AccountSid in the path other than the authenticated one ("using subaccount credentials to
  access master account" is a listed cause).
* 404 / 20404 "The requested resource <path> was not found" for unknown or deleted sids (errors/20404:
  "the resource existed previously and has since been deleted").
* 400 / 21604 To missing, 21211 To not a valid phone number, 21603 neither From nor MessagingServiceSid,
  21602 Body (and MediaUrl) missing, 21617 Body over 1600 characters (errors/21604, 21211, 21603, 21602).
* DELETE (or redaction) of a message or call Twilio has not finished with: code 20009 "Cannot delete this
  resource before it is complete" (errors/20009, which names calls still in progress and messages not
  yet finalised). Its HTTP status is not on that page; 409 is what codeforamerica/clientcomm-rails
  records for Twilio's "Cannot delete message because delivery has not been completed." (20009).
* 429 / 20429 "Too Many Requests": never processed, safe to retry (errors/20429); may carry Retry-After.
* Opt-out keywords (tests/twilio_standin/rules.py, which cites the pages): an inbound text whose whole
  body, trimmed and in any case, is one of Twilio's keywords gets Twilio's own reply (a message record
  of its own, ``outbound-reply``, which the app must delete too) and opts its sender out of texts from
  that number, or from every number of its Messaging Service; creating a message to them from there is
  then refused with 400 / 21610 "Attempt to send to unsubscribed recipient" (errors/21610), and a TwiML
  reply fails with 21610. Advanced Opt-Out (own keywords such as DIWEDD and STOPIO, own replies,
  ``OptOutType`` on the webhook) and turning the handling off are modelled per number or service.
* What a UK account refuses when a message is created (rules.py): a sender that cannot text in the UK
  (21606), retention parameters without Message Redaction (30029 / 30030), a country the account may
  not text (21408), a ValidityPeriod out of range (21624), an unknown Messaging Service (21701; only
  ``strict_services=False`` makes one on first use instead), a full
  queue (21611 from a number; 30001 after creation through a Messaging Service). Redaction, when the
  account has it, blanks a message's body and obfuscates the person's number once it is sent.
* Finality: ``sent`` is final when the carrier sends no receipt (common in the UK), so a message held
  in ``sent`` becomes deletable after ``sent_final_after`` seconds; ``partially_delivered`` is final;
  Twilio asks for a wait of at least a minute after sending or receiving before a DELETE
  (errors/20009), modelled as ``delete_grace`` (0 unless a test sets it). A message still queued when
  its ValidityPeriod runs out fails with 30036.
* The account (account.py): IncomingPhoneNumbers (list, fetch, update of webhooks), the Account
  resource (subaccount or not), Messaging Services and their pool numbers (messaging v1). A default
  Messaging Service (DEFAULT_SERVICE_SID, pool number DEFAULT_SERVICE_NUMBER) exists in every stand-in,
  as the neutral sender the app's tests configure.
* A new message is ``queued``, or ``accepted`` when sent through a Messaging Service; no status callback is
  sent for that initial status, one is sent for each later change (Twilio's guide "Outbound Message
  Status in Status Callbacks"). Callbacks are form posts signed with X-Twilio-Signature.

Not verified against Twilio, chosen to be plausible: 405 / 20004 for an unsupported method, 400 / 20001
for an unparsable filter or PageToken, 400 / 20007 for PageSize over 1000, the status path
queued -> sending -> sent -> delivered|undelivered (30003) and queued -> sending -> failed (30008).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import heapq
import http.client
import itertools
import json
import queue
import re
import secrets
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from twilio.request_validator import RequestValidator

from . import rules
from .account import AccountMixin, MessagingService, PhoneNumber
from .texting import TextingMixin

API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_BODY_CHARS = 1600
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

# Statuses in which Twilio has finished with a message or call, so it may be deleted.
MESSAGE_FINAL = frozenset({"delivered", "undelivered", "failed", "received", "canceled", "read",
                           "partially_delivered"})
CALL_FINAL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
CALL_STATUSES = frozenset({"queued", "ringing", "in-progress"}) | CALL_FINAL

# What follows ``queued`` for each destination outcome; "sent" holds the message there (no DLR).
OUTCOME_PATHS: Mapping[str, tuple[str, ...]] = {
    "delivered": ("sending", "sent", "delivered"),
    "undelivered": ("sending", "sent", "undelivered"),
    "failed": ("sending", "failed"),
    "sent": ("sending", "sent"),
    "partially_delivered": ("sending", "sent", "partially_delivered"),
    "queued": (),  # never leaves Twilio's queue (a full sender): only its ValidityPeriod ends it
}
DELIVERY_ERRORS: Mapping[str, tuple[int, str]] = {
    "undelivered": (30003, "Unreachable destination handset"),
    "failed": (30008, "Unknown error"),
}
PRICE_PER_SEGMENT = 0.0079
OPT_OUT_KEYWORDS = rules.DEFAULT_STOP
OPT_IN_KEYWORDS = rules.DEFAULT_START
DEFAULT_SERVICE_SID = "MG" + "5" * 32          # the neutral sender the app's tests configure
DEFAULT_SERVICE_NUMBER = "+447700900001"       # its pool's number (a UK mobile, Ofcom's drama range)
SENT_FINAL_AFTER_SECONDS = 3600.0  # not documented by Twilio: how long a receipt-less `sent` takes to be final

MESSAGE_FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>")
CALL_FILTERS = (
    "To", "From", "ParentCallSid", "Status",
    "StartTime", "StartTime<", "StartTime>", "EndTime", "EndTime<", "EndTime>",
)

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


# --------------------------------------------------------------------------------------------------
# Small helpers


class TwilioError(Exception):
    """A Twilio-shaped API error; raising it in a handler answers with Twilio's JSON error body."""

    def __init__(self, status: int, code: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def not_found(path: str) -> TwilioError:
    """Twilio's 404 names the path that was asked for."""
    return TwilioError(404, 20404, f"The requested resource {path} was not found")


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def rfc2822(when: dt.datetime | None) -> str | None:
    """Twilio's date format, e.g. ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return None if when is None else email.utils.format_datetime(when)


def count_segments(body: str) -> int:
    """SMS segments as Twilio bills them: GSM-7 160/153 per part, otherwise UCS-2 70/67."""
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in body):
        units, single, multi = sum(2 if c in _GSM7_EXTENDED else 1 for c in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else -(-units // multi)


def wait_for(
    predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01, description: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that; fail after ``timeout``.

    Tests use this instead of sleeping: they wait exactly as long as the condition takes.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"not true within {timeout}s: {description or predicate}")
        time.sleep(interval)


def parse_time_filter(name: str, value: str) -> dt.date | dt.datetime:
    """Parse a DateSent/StartTime filter value: ``YYYY-MM-DD``, ISO 8601 or RFC 2822."""
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise TwilioError(400, 20001, f"Invalid value for {name}: {value}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def time_matches(when: dt.datetime | None, op: str, bound: dt.date | dt.datetime) -> bool:
    """Twilio's ``X``, ``X<`` and ``X>`` filters: on, on-or-before, on-or-after (dates compare by day)."""
    if when is None:
        return False
    left: dt.date | dt.datetime = when
    if not isinstance(bound, dt.datetime):
        left = when.date()
    elif op == "":
        left, bound = when.date(), bound.date()
    if op == "<":
        return left <= bound
    if op == ">":
        return left >= bound
    return left == bound


def filter_by_time(records: list, query: Mapping[str, str], name: str, attr: str) -> list:
    for op in ("", "<", ">"):
        key = name + op
        if key in query:
            bound = parse_time_filter(key, query[key])
            records = [r for r in records if time_matches(getattr(r, attr), op, bound)]
    return records


def first_values(form: Mapping[str, list[str]]) -> dict[str, Any]:
    """Form params as plain values (lists only where a name was repeated) for logs and assertions."""
    return {k: v[0] if len(v) == 1 else list(v) for k, v in form.items()}


# --------------------------------------------------------------------------------------------------
# Records


@dataclass
class MessageRecord:
    """One Message resource plus what the tests want to see (retention asked for, history, deletion)."""

    sid: str
    account_sid: str
    seq: int
    to: str
    from_: str | None
    body: str
    direction: str
    status: str
    date_created: dt.datetime
    path: list[str]
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    content_retention: str | None = None
    address_retention: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    num_media: int = 0
    num_segments: int = 1
    date_updated: dt.datetime | None = None
    date_sent: dt.datetime | None = None
    error_code: int | None = None
    error_message: str | None = None
    price: str | None = None
    position: int = 0
    next_at: float | None = None
    deleted: bool = False
    date_deleted: dt.datetime | None = None
    history: list[str] = field(default_factory=list)
    validity_period: int | None = None
    expires_at: float | None = None     # monotonic: fails with 30036 if still queued then
    settled_at: float | None = None     # monotonic: when it reached `sent` or a final status
    opt_out_type: str | None = None     # inbound: the keyword kind Twilio acted on (STOP, START, HELP)

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The JSON Twilio returns for this message (schema ``api.v2010.account.message``)."""
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(self.num_media),
            "num_segments": str(self.num_segments),
            "price": self.price,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": self.uri.replace(".json", "/Media.json"),
                "feedback": self.uri.replace(".json", "/Feedback.json"),
            },
            "to": self.to,
            "uri": self.uri,
        }

    def snapshot(self) -> dict[str, Any]:
        """Resource plus stand-in bookkeeping, as exposed to tests (also over the control API)."""
        return {
            **self.resource(),
            "deleted": self.deleted,
            "date_deleted": rfc2822(self.date_deleted),
            "status_callback": self.status_callback,
            "content_retention": self.content_retention,
            "address_retention": self.address_retention,
            "outcome": self.outcome,
            "status_history": list(self.history),
            "params": dict(self.params),
            "validity_period": self.validity_period,
            "opt_out_type": self.opt_out_type,
        }


@dataclass
class CallRecord:
    """One Call resource; calls are only added by tests (the app never places calls)."""

    sid: str
    account_sid: str
    seq: int
    to: str
    from_: str
    status: str
    direction: str
    date_created: dt.datetime
    date_updated: dt.datetime
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    deleted: bool = False
    date_deleted: dt.datetime | None = None
    history: list[str] = field(default_factory=list)
    parent_call_sid: str | None = None

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json"

    @property
    def duration(self) -> str | None:
        if self.status not in CALL_FINAL:
            return None
        if self.status != "completed" or self.start_time is None or self.end_time is None:
            return "0"
        return str(int((self.end_time - self.start_time).total_seconds()))

    def resource(self) -> dict[str, Any]:
        """The JSON Twilio returns for this call (schema ``api.v2010.account.call``)."""
        base = self.uri[: -len(".json")]
        subresources = ("notifications", "recordings", "payments", "events", "siprec", "streams",
                        "transcriptions", "user_defined_message_subscriptions", "user_defined_messages")
        names = {"user_defined_message_subscriptions": "UserDefinedMessageSubscriptions",
                 "user_defined_messages": "UserDefinedMessages"}
        return {
            "account_sid": self.account_sid,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "duration": self.duration,
            "end_time": rfc2822(self.end_time),
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": self.from_,
            "group_sid": None,
            "parent_call_sid": self.parent_call_sid,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": rfc2822(self.start_time),
            "status": self.status,
            "subresource_uris": {
                name: f"{base}/{names.get(name, name.capitalize())}.json" for name in subresources
            },
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": self.uri,
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.resource(),
            "deleted": self.deleted,
            "date_deleted": rfc2822(self.date_deleted),
            "status_history": list(self.history),
        }


@dataclass
class Fault:
    """An injected failure: the next ``remaining`` matching REST requests answer ``error``."""

    method: str
    pattern: re.Pattern[str]
    error: TwilioError | None
    remaining: int
    apply: bool = False
    delay: float = 0.0  # seconds to hold the answer after acting on the request (error None: answer normally)

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and self.method in ("*", method) and bool(self.pattern.search(path))

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "path_regex": self.pattern.pattern,
                "status": self.error.status if self.error else None,
                "code": self.error.code if self.error else None, "remaining": self.remaining,
                "apply": self.apply, "delay": self.delay}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, list[str]]
    raw_body: bytes
    headers: Mapping[str, str]


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Observation helpers shared by the in-process server and the HTTP control client


class _Observations:
    """Read-side API shared by :class:`TwilioStandin` and :class:`StandinControl` (both give ``state()``).

    Everything returned is a snapshot of plain dicts, so tests read the same shapes whether the stand-in
    runs in their process or in another one.
    """

    def state(self) -> dict[str, Any]:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    @property
    def messages(self) -> dict[str, dict[str, Any]]:
        """Every message by sid, deleted ones included (flagged ``deleted=True``)."""
        return {m["sid"]: m for m in self.state()["messages"]}

    @property
    def calls(self) -> dict[str, dict[str, Any]]:
        return {c["sid"]: c for c in self.state()["calls"]}

    def message(self, sid: str) -> dict[str, Any]:
        return self.messages[sid]

    def sent_messages(self) -> list[dict[str, Any]]:
        """Outbound messages the app created through the API, oldest first."""
        return [m for m in self.state()["messages"] if m["direction"] == "outbound-api"]

    @property
    def deleted_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.state()["messages"] if m["deleted"]]

    @property
    def deleted_sids(self) -> list[str]:
        """Sids of deleted messages, in the order they were deleted."""
        return list(self.state()["deleted_sids"])

    @property
    def deleted_call_sids(self) -> list[str]:
        return list(self.state()["deleted_call_sids"])

    @property
    def request_log(self) -> list[dict[str, Any]]:
        return list(self.state()["request_log"])

    @property
    def callback_log(self) -> list[dict[str, Any]]:
        return list(self.state()["callback_log"])

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01,
                 description: str = "") -> Any:
        return wait_for(predicate, timeout, interval, description)

    def wait_for_status(self, sid: str, status: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until message ``sid`` has ``status``; return its snapshot."""
        return wait_for(
            lambda: (m := self.messages.get(sid)) and m["status"] == status and m,
            timeout, description=f"message {sid} reaches {status}",
        )


# --------------------------------------------------------------------------------------------------
# The stand-in


class TwilioStandin(AccountMixin, TextingMixin, _Observations):
    """A stateful Twilio REST API on ``http://127.0.0.1:PORT`` (see the module docstring).

    ``step_delay`` is the time between lifecycle steps (queued -> sending -> sent -> delivered); with
    ``auto_advance=False`` messages only move when a test calls :meth:`advance`.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        step_delay: float = 0.05,
        auto_advance: bool = True,
        callback_timeout: float = 5.0,
        messaging_service_from: str = DEFAULT_SERVICE_NUMBER,
        message_redaction: bool = False,
        sms_countries: Iterable[str] = ("GB",),
        sent_final_after: float = SENT_FINAL_AFTER_SECONDS,
        delete_grace: float = 0.0,
        owner_account_sid: str | None = None,
        queue_limit: int | None = None,
        strict_services: bool = True,
    ):
        """The account's features (each settable later with :meth:`configure`): ``message_redaction``
        (Twilio enables it on request; without it retention parameters are refused), ``sms_countries``
        (Messaging Geo Permissions), ``sent_final_after`` (seconds until a receipt-less ``sent`` message is
        final), ``delete_grace`` (seconds after sending or receiving before Twilio will delete),
        ``owner_account_sid`` (set: this is a subaccount of that account), ``queue_limit`` (messages a
        sender may have waiting in Twilio's queue; None: unlimited). ``strict_services`` (default, as Twilio
        does): a message through a Messaging Service the account does not have is refused (21701,
        https://www.twilio.com/docs/api/errors/21701); the account has one, DEFAULT_SERVICE_SID (the
        sender the app's tests configure), and add_messaging_service makes more. False: an unknown service
        is made on first use, with a UK mobile in its pool (kinder than Twilio: only for a test that says so)."""
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", account_sid):
            raise ValueError("account_sid must be 'AC' followed by 32 hex digits")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = host
        self.port = port
        self.step_delay = step_delay
        self.auto_advance = auto_advance
        self.callback_timeout = callback_timeout
        self.messaging_service_from = messaging_service_from
        self.message_redaction = message_redaction
        self.sms_countries = frozenset(sms_countries)
        self.sent_final_after = sent_final_after
        self.delete_grace = delete_grace
        self.owner_account_sid = owner_account_sid or account_sid
        self.queue_limit = queue_limit
        self.strict_services = strict_services
        self.created = utcnow()
        self._numbers: dict[str, PhoneNumber] = {}
        self._services: dict[str, MessagingService] = {}
        self._number_opt_out: dict[str, rules.OptOut] = {}
        self._cond = threading.Condition(threading.RLock())
        self._seq = itertools.count(1)
        self._tiebreak = itertools.count()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._callbacks: queue.Queue = queue.Queue()
        self._stopping = False
        self._reset_state()
        self.add_messaging_service([messaging_service_from], sid=DEFAULT_SERVICE_SID, friendly_name="follow-ups")

    # -- lifecycle of the server itself --------------------------------------------------------

    def start(self) -> "TwilioStandin":
        handler = type("StandinHandler", (_Handler,), {"standin": self})
        server = self._server = _Server((self.host, self.port), handler)
        self.port = server.server_address[1]
        self._stopping = False
        for name, target in (("http", lambda: server.serve_forever(poll_interval=0.01)),
                             ("lifecycle", self._run_lifecycle),
                             ("callbacks", self._run_callbacks)):
            thread = threading.Thread(target=target, name=f"twilio-standin-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()  # kept-alive connections: no answer from a stopped stand-in
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._callbacks.put(None)
        for thread in self._threads:
            thread.join(timeout=self.callback_timeout + 1)
        self._threads.clear()
        self._server = None

    def __enter__(self) -> "TwilioStandin":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since start (a client that keeps its connection alive makes one)."""
        return self._server.accepted if self._server is not None else 0

    def reset(self) -> None:
        """Forget every message, call, fault, outcome and log (a server shared by many tests)."""
        with self._cond:
            self._reset_state()

    def _reset_state(self) -> None:
        self._messages: dict[str, MessageRecord] = {}
        self._calls: dict[str, CallRecord] = {}
        self._deleted_sids: list[str] = []
        self._deleted_call_sids: list[str] = []
        self._outcomes: dict[str, str] = {}
        self._faults: list[Fault] = []
        # (next_at, tie-break, record) for every scheduled lifecycle step; an entry whose time is no
        # longer the record's next_at (advanced, deleted) is stale and skipped when it comes up
        self._due: list[tuple[float, int, MessageRecord]] = []
        self._request_log: list[dict[str, Any]] = []
        self._callback_log: list[dict[str, Any]] = []
        self._opted_out: set[tuple[str, str]] = set()   # (recipient, our number or service) after a STOP

    # -- test-facing controls ------------------------------------------------------------------

    def set_outcome(self, number: str, outcome: str) -> None:
        """Make texts to ``number`` end ``delivered`` (default), ``undelivered`` (30003),
        ``failed`` (30008) or stay ``sent`` (no delivery receipt until :meth:`advance`)."""
        if outcome not in OUTCOME_PATHS:
            raise ValueError(f"outcome must be one of {sorted(OUTCOME_PATHS)}")
        with self._cond:
            self._outcomes[number] = outcome

    def advance(self, sid: str, to: str | None = None) -> str:
        """Move message ``sid`` one lifecycle step (or until status ``to``); return its status.

        A message held in ``sent`` (manual mode, or outcome ``sent``) is delivered by the next step.
        """
        with self._cond:
            record = self._messages.get(sid)
            if record is None or record.deleted:
                raise KeyError(sid)
            if to is not None and record.status == to:
                return record.status
            while self._step(record, extend_held=True) and to not in (None, record.status):
                pass
            self._reschedule(record)
            return record.status

    def advance_all(self, to: str | None = None) -> dict[str, str]:
        """:meth:`advance` every outbound message that is not final; return sid -> status."""
        with self._cond:
            pending = [r.sid for r in self._messages.values()
                       if not r.deleted and r.direction == "outbound-api" and r.status not in MESSAGE_FINAL]
            return {sid: self.advance(sid, to) for sid in pending}

    def _add_settled_message(self, from_: str, to: str, body: str, direction: str, status: str) -> str:
        """A message that is already in its final status when it appears (must hold the lock)."""
        now = utcnow()
        record = MessageRecord(
            sid=new_sid("SM"), account_sid=self.account_sid, seq=next(self._seq), to=to,
            from_=from_, body=body, direction=direction, status=status, date_created=now,
            date_updated=now, date_sent=now, path=[status], num_segments=count_segments(body),
            history=[status], settled_at=time.monotonic(),
        )
        self._messages[record.sid] = record
        return record.sid

    def add_call(self, from_: str, to: str, status: str = "in-progress", direction: str = "inbound",
                 parent: str | None = None) -> str:
        """A call record as Twilio would hold it (the app only reads and deletes calls); `parent`: the
        call whose <Dial> placed this leg (direction outbound-dial)."""
        self._check_call_status(status)
        with self._cond:
            now = utcnow()
            record = CallRecord(
                sid=new_sid("CA"), account_sid=self.account_sid, seq=next(self._seq), to=to,
                from_=from_, status=status, direction="outbound-dial" if parent else direction,
                date_created=now, date_updated=now, parent_call_sid=parent,
            )
            self._apply_call_status(record, status, now)
            self._calls[record.sid] = record
            return record.sid

    def set_call_status(self, sid: str, status: str) -> None:
        self._check_call_status(status)
        with self._cond:
            record = self._calls.get(sid)
            if record is None or record.deleted:
                raise KeyError(sid)
            self._apply_call_status(record, status, utcnow())

    def inject(
        self,
        method: str = "POST",
        path_regex: str = r".*",
        status: int = 500,
        count: int = 1,
        code: int | None = None,
        message: str | None = None,
        retry_after: int | None = None,
        apply: bool = False,
    ) -> None:
        """Make the next ``count`` REST requests matching ``method`` ("*" for any) and ``path_regex``
        answer ``status`` with a Twilio error body (code defaults to 20000 + status, e.g. 20500, 20429).
        Faults are checked before authentication, like a failure in front of Twilio's API.

        The request is not applied (nothing created or deleted) unless ``apply=True``, which models a
        response lost after Twilio acted on the request. ``retry_after`` adds a ``Retry-After`` header.
        """
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        error = TwilioError(status, code if code is not None else 20000 + status,
                            message or _DEFAULT_FAULT_MESSAGES.get(status, "Injected fault"), headers)
        with self._cond:
            self._faults.append(Fault(method.upper(), re.compile(path_regex), error, count, apply))

    def slow(self, method: str = "POST", path_regex: str = r".*", seconds: float = 1.0, count: int = 1) -> None:
        """Act on the next ``count`` matching requests at once but hold their answers ``seconds``: a
        client killed meanwhile never learns that Twilio did what it asked."""
        with self._cond:
            self._faults.append(Fault(method.upper(), re.compile(path_regex), None, count, True, seconds))

    def clear_faults(self) -> None:
        with self._cond:
            self._faults.clear()

    def state(self) -> dict[str, Any]:
        """Everything a test may assert on, as JSON-able data (also served at ``GET /_standin/state``)."""
        with self._cond:
            return {
                "account_sid": self.account_sid,
                "messages": [r.snapshot() for r in sorted(self._messages.values(), key=lambda r: r.seq)],
                "calls": [r.snapshot() for r in sorted(self._calls.values(), key=lambda r: r.seq)],
                "deleted_sids": list(self._deleted_sids),
                "deleted_call_sids": list(self._deleted_call_sids),
                "request_log": [dict(e) for e in self._request_log],
                "callback_log": [dict(e) for e in self._callback_log],
                "faults": [f.describe() for f in self._faults if f.remaining > 0],
                "outcomes": dict(self._outcomes),
                "opted_out": sorted(f"{person} -> {ours}" for person, ours in self._opted_out),
                "features": {name: sorted(v) if isinstance(v := getattr(self, name), frozenset) else v
                             for name in self.FEATURES},
            }

    # -- message lifecycle ---------------------------------------------------------------------

    def _step(self, record: MessageRecord, extend_held: bool = False) -> bool:
        """Apply the next status on the record's path; False when there is none (must hold the lock).
        A message still waiting in Twilio's queue when its ValidityPeriod runs out fails (30036)."""
        if record.deleted:
            return False
        if (record.status in ("accepted", "queued") and record.expires_at is not None
                and time.monotonic() >= record.expires_at):
            record.path[record.position + 1:] = ["failed"]
            record.error_code, record.error_message = 30036, "Validity Period Expired"
        if record.position + 1 >= len(record.path):
            if not (extend_held and record.status == "sent"):
                return False
            record.path.append("delivered")
        record.position += 1
        self._set_message_status(record, record.path[record.position])
        return True

    def _set_message_status(self, record: MessageRecord, status: str) -> None:
        now = utcnow()
        record.status = status
        record.date_updated = now
        record.history.append(status)
        if status == "sent" or status in MESSAGE_FINAL:
            record.settled_at = time.monotonic()
        if status == "queued" and record.from_ is None:
            service = self._services.get(record.messaging_service_sid or "")
            record.from_ = (self._pool_number(service) if service else None) or self.messaging_service_from
            record.num_segments = count_segments(record.body)
        if status == "sent":
            record.date_sent = now
            record.price = f"-{PRICE_PER_SEGMENT * record.num_segments:.5f}"
        if status in DELIVERY_ERRORS and record.error_code is None:
            record.error_code, record.error_message = DELIVERY_ERRORS[status]
        if record.status_callback:
            params = self._callback_params(record)
        if status == "sent" or status in MESSAGE_FINAL:
            self._redact(record)
        if record.status_callback:
            self._callbacks.put((record.status_callback, params, record.sid, status))

    def _redact(self, record: MessageRecord) -> None:
        """Message Redaction, once a message is sent: its body discarded and the person's number
        obfuscated, as the message asked or, on an account with redaction, by default
        (https://www.twilio.com/docs/messaging/guides/privacy-message-redaction)."""
        if not self.message_redaction:
            return
        if (record.content_retention or "discard") == "discard":
            record.body = ""
        if (record.address_retention or "obfuscate") == "obfuscate" and record.direction != "inbound":
            record.to = rules.obfuscate(record.to)

    def _callback_params(self, record: MessageRecord) -> dict[str, str]:
        """The form Twilio posts to a message's StatusCallback."""
        params = {
            "AccountSid": record.account_sid,
            "ApiVersion": API_VERSION,
            "From": record.from_ or "",
            "MessageSid": record.sid,
            "MessageStatus": record.status,
            "SmsSid": record.sid,
            "SmsStatus": record.status,
            "To": record.to,
        }
        if record.messaging_service_sid:
            params["MessagingServiceSid"] = record.messaging_service_sid
        if record.error_code is not None:
            params["ErrorCode"] = str(record.error_code)
        return params

    def _reschedule(self, record: MessageRecord) -> None:
        has_next = not record.deleted and record.position + 1 < len(record.path)
        record.next_at = time.monotonic() + self.step_delay if (self.auto_advance and has_next) else None
        if (record.next_at is None and not record.deleted and record.expires_at is not None
                and record.status in ("accepted", "queued")):
            record.next_at = max(record.expires_at, time.monotonic())  # held in the queue: it expires then
        if record.next_at is not None:
            heapq.heappush(self._due, (record.next_at, next(self._tiebreak), record))
        self._cond.notify_all()

    def _run_lifecycle(self) -> None:
        """Background thread: step every message whose time has come, then sleep until the next one.
        Due times are kept in a heap: a scan of every message ever created on every wake cost the
        stand-in's process more CPU than answering the REST calls once a few hundred were in flight."""
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                while self._due and self._due[0][0] <= now:
                    at, _, record = heapq.heappop(self._due)
                    if record.next_at != at:
                        continue  # stale: advanced by hand or deleted since it was scheduled
                    self._step(record)
                    self._reschedule(record)
                self._cond.wait(max(0.0, self._due[0][0] - time.monotonic()) if self._due else None)

    # -- status callbacks ----------------------------------------------------------------------

    def _run_callbacks(self) -> None:
        """Background thread: one worker, so callbacks for a message arrive in status order.

        Posted with http.client over one connection per receiver, kept while the receiver keeps it
        (gunicorn's sync workers close it after every answer; then the next post opens another): the
        requests library's own work per post was most of this process's CPU in bench/followups.py."""
        validator = RequestValidator(self.auth_token)
        connections: dict[tuple[str, str, int | None], http.client.HTTPConnection] = {}
        while (item := self._callbacks.get()) is not None:
            url, params, sid, status = item
            entry = {"url": url, "params": params, "message_sid": sid, "status": status,
                     "signature": validator.compute_signature(url, params),
                     "status_code": None, "ok": False, "error": None}
            try:
                entry["status_code"] = self._post_callback(connections, url, params, entry["signature"])
                entry["ok"] = 200 <= entry["status_code"] < 300
            except (OSError, http.client.HTTPException, ValueError) as exc:  # recorded, never fatal
                entry["error"] = f"{type(exc).__name__}: {exc}"                # (Twilio does not retry)
            entry["time"] = time.time()  # when the receiver had answered (or failed)
            with self._cond:
                self._callback_log.append(entry)
        for connection in connections.values():
            connection.close()

    def _post_callback(self, connections: dict, url: str, params: dict[str, str], signature: str) -> int:
        """POST the signed form to ``url``; the receiver's HTTP status."""
        split = urlsplit(url)
        key = (split.scheme, split.hostname or "", split.port)
        connection = connections.get(key)
        if connection is not None and connection.sock is not None and select.select([connection.sock], [], [], 0)[0]:
            connection.close()  # readable while idle: the receiver closed it (reopened by the request)
        if connection is None:
            kind = http.client.HTTPSConnection if split.scheme == "https" else http.client.HTTPConnection
            connection = connections[key] = kind(split.hostname or "", split.port, timeout=self.callback_timeout)
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
        try:
            connection.request("POST", target, body=urlencode(params).encode(), headers={
                "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature,
                "User-Agent": "TwilioProxy/1.1"})
            response = connection.getresponse()
            response.read()
        except BaseException:
            connection.close()
            raise
        return response.status

    # -- calls ---------------------------------------------------------------------------------

    @staticmethod
    def _check_call_status(status: str) -> None:
        if status not in CALL_STATUSES:
            raise ValueError(f"call status must be one of {sorted(CALL_STATUSES)}")

    @staticmethod
    def _apply_call_status(record: CallRecord, status: str, now: dt.datetime) -> None:
        record.status = status
        record.date_updated = now
        record.history.append(status)
        if status not in ("queued", "ringing") and record.start_time is None:
            record.start_time = now
        if status in CALL_FINAL and record.end_time is None:
            record.end_time = now

    # -- HTTP entry point ----------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one HTTP request (called from the server's worker threads)."""
        if request.path.startswith("/_standin/"):
            return _control_handle(self, request)
        try:
            response = self._handle_rest(request)
        except TwilioError as error:
            response = Response(error.status, error.body(), dict(error.headers))
        except Exception as exc:  # a stand-in bug: answer like Twilio's 500 rather than drop the socket
            error = TwilioError(500, 20500, f"Internal Server Error (stand-in: {type(exc).__name__}: {exc})")
            response = Response(500, error.body())
        response.headers.setdefault("Twilio-Request-Id", new_sid("RQ"))
        self._log_request(request, response)
        return response

    def _log_request(self, request: Request, response: Response) -> None:
        entry = {
            "time": time.time(),
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "form": first_values(request.form),
            "status": response.status,
            "code": response.body.get("code") if response.status >= 400 and response.body else None,
        }
        with self._cond:
            self._request_log.append(entry)

    def _handle_rest(self, request: Request) -> Response:
        fault = self._take_fault(request)
        if fault is not None and not fault.apply:
            raise fault.error
        self._authenticate(request)
        handler, params = self._route(request)
        with self._cond:
            response = handler(request, **params)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)  # the request is done; only its answer is late
        if fault is not None and fault.error is not None:
            raise fault.error
        return response

    def _take_fault(self, request: Request) -> Fault | None:
        with self._cond:
            for fault in self._faults:
                if fault.matches(request.method, request.path):
                    fault.remaining -= 1
                    return fault
        return None

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if scheme.lower() != "basic" or (user, password) != (self.account_sid, self.auth_token):
            raise TwilioError(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})

    def _route(self, request: Request) -> tuple[Callable[..., Response], dict[str, str]]:
        for pattern, methods in _ROUTES:
            match = pattern.match(request.path)
            if match is None:
                continue
            params = match.groupdict()
            if params.pop("account", self.account_sid) != self.account_sid:
                raise TwilioError(401, 20003, "Authenticate")
            if request.method not in methods:
                raise TwilioError(405, 20004, "Method not allowed")
            return getattr(self, methods[request.method]), params
        raise not_found(request.path)

    # -- REST: messages ------------------------------------------------------------------------

    def _create_message(self, request: Request) -> Response:
        form = first_values(request.form)
        to, from_ = form.get("To"), form.get("From") or None
        service, body = form.get("MessagingServiceSid") or None, form.get("Body")
        media = request.form.get("MediaUrl", [])
        validate_new_message(to, from_, service, body, media)
        validity = self._check_new_message(form, to, from_, service)
        now = utcnow()
        outcome = self._outcomes.get(to, "delivered")
        initial = "accepted" if service else "queued"
        if service and self.queue_limit is not None and self._queued(service) >= self.queue_limit:
            outcome = "queue_overflow"  # a Messaging Service takes it, then it fails (errors/21611, 30001)
        record = MessageRecord(
            sid=new_sid("SM"), account_sid=self.account_sid, seq=next(self._seq), to=to, from_=from_,
            body=body or "", direction="outbound-api", status=initial, date_created=now,
            date_updated=now, path=[initial] + (["queued"] if service else []) + list(
                OUTCOME_PATHS.get(outcome, ("failed",))),
            messaging_service_sid=service, status_callback=form.get("StatusCallback") or None,
            content_retention=form.get("ContentRetention"), address_retention=form.get("AddressRetention"),
            params=form, outcome=outcome, num_media=len(media),
            num_segments=0 if from_ is None else count_segments(body or ""), history=[initial],
            validity_period=validity,
            expires_at=None if validity is None else time.monotonic() + validity,
        )
        if outcome == "queue_overflow":
            record.error_code, record.error_message = 30001, "Queue overflow"
        self._messages[record.sid] = record
        self._reschedule(record)
        return Response(201, record.resource())

    def _check_new_message(self, form: dict[str, Any], to: str, from_: str | None, service: str | None) -> int | None:
        """What a UK account refuses (rules.py cites the pages), in the order checked; the ValidityPeriod."""
        try:
            if service is not None:
                if not rules.MESSAGING_SERVICE_SID.match(service):
                    raise rules.Refusal(400, 21705, "The Messaging Service is invalid")
                if service not in self._services:
                    if self.strict_services:
                        raise rules.Refusal(400, 21701, f"The Messaging Service {service} does not exist")
                    self.add_messaging_service([self._spare_mobile()], sid=service)
            if from_ is not None:
                rules.check_sender(from_, to)
                if rules.E164.match(from_) and self._number_by_phone(from_) is None:
                    raise rules.Refusal(400, 21606, f"The 'From' phone number provided ({from_}) is not a "
                                                    "valid message-capable Twilio phone number for this account.")
            rules.check_retention(form, self.message_redaction)
            validity = rules.validity_seconds(form.get("ValidityPeriod"))
            rules.check_country(to, self.sms_countries)
            if (to, self._scope(from_, service)) in self._opted_out:
                raise rules.Refusal(400, 21610, "Attempt to send to unsubscribed recipient")
            if from_ is not None and self.queue_limit is not None and self._queued(from_) >= self.queue_limit:
                raise rules.Refusal(400, 21611, "This 'From' number has exceeded the maximum number of "
                                                "queued messages")
        except rules.Refusal as refusal:
            raise TwilioError(refusal.status, refusal.code, refusal.message) from None
        return validity

    def _spare_mobile(self) -> str:
        """A UK mobile (Ofcom's drama range) the account does not have yet, for a service made on first use."""
        n = 2
        while self._number_by_phone(f"+4477009{n:05d}") is not None:
            n += 1
        return f"+4477009{n:05d}"

    def _queued(self, sender: str) -> int:
        """Messages of this sender (a number or a Messaging Service) still waiting in Twilio's queue."""
        return sum(1 for r in self._messages.values() if not r.deleted and r.status in ("accepted", "queued")
                   and sender in (r.from_, r.messaging_service_sid))

    def _deletable(self, record: MessageRecord) -> bool:
        """Final, and settled for longer than Twilio's grace (errors/20009); a receipt-less `sent` once
        it has been `sent` for sent_final_after seconds."""
        waited = time.monotonic() - (record.settled_at or time.monotonic())
        if record.status == "sent":
            return waited >= max(self.sent_final_after, self.delete_grace)
        return record.status in MESSAGE_FINAL and waited >= self.delete_grace

    def _live_message(self, path: str, sid: str) -> MessageRecord:
        record = self._messages.get(sid)
        if record is None or record.deleted:
            raise not_found(path)
        return record

    def _fetch_message(self, request: Request, sid: str) -> Response:
        return Response(200, self._live_message(request.path, sid).resource())

    def _update_message(self, request: Request, sid: str) -> Response:
        """Redaction (``Body=""``) needs a final message; cancelling needs a ``scheduled`` one."""
        record = self._live_message(request.path, sid)
        form = first_values(request.form)
        if form.get("Status") == "canceled":
            if record.status != "scheduled":
                raise TwilioError(400, 30409, "Message is not in a cancelable state.")
            self._set_message_status(record, "canceled")
        if "Body" in form:
            if form["Body"] != "":
                raise TwilioError(400, 20001, "Body can only be set to an empty string to redact it.")
            if not self._deletable(record):
                raise TwilioError(409, 20009, "Cannot delete message because delivery has not been completed.")
            record.body = ""
            record.date_updated = utcnow()
        return Response(200, record.resource())

    def _delete_message(self, request: Request, sid: str) -> Response:
        record = self._live_message(request.path, sid)
        if not self._deletable(record):
            raise TwilioError(409, 20009, "Cannot delete message because delivery has not been completed.")
        record.deleted, record.date_deleted, record.next_at = True, utcnow(), None
        self._deleted_sids.append(sid)
        return Response(204)

    def _list_messages(self, request: Request) -> Response:
        query = request.query
        records = [r for r in self._messages.values() if not r.deleted]
        if "To" in query:
            records = [r for r in records if r.to == query["To"]]
        if "From" in query:
            records = [r for r in records if r.from_ == query["From"]]
        records = filter_by_time(records, query, "DateSent", "date_sent")
        return self._page(request, "messages", records, MESSAGE_FILTERS, self._messages)

    # -- REST: calls ---------------------------------------------------------------------------

    def _live_call(self, path: str, sid: str) -> CallRecord:
        record = self._calls.get(sid)
        if record is None or record.deleted:
            raise not_found(path)
        return record

    def _fetch_call(self, request: Request, sid: str) -> Response:
        return Response(200, self._live_call(request.path, sid).resource())

    def _delete_call(self, request: Request, sid: str) -> Response:
        record = self._live_call(request.path, sid)
        if record.status not in CALL_FINAL:
            raise TwilioError(409, 20009, "Cannot delete call because it is still in progress.")
        record.deleted, record.date_deleted = True, utcnow()
        self._deleted_call_sids.append(sid)
        return Response(204)

    def _list_calls(self, request: Request) -> Response:
        query = request.query
        records = [r for r in self._calls.values() if not r.deleted]
        for key, attr in (("To", "to"), ("From", "from_"), ("Status", "status")):
            if key in query:
                records = [r for r in records if getattr(r, attr) == query[key]]
        if "ParentCallSid" in query:
            records = [r for r in records if r.parent_call_sid == query["ParentCallSid"]]
        records = filter_by_time(records, query, "StartTime", "start_time")
        records = filter_by_time(records, query, "EndTime", "end_time")
        return self._page(request, "calls", records, CALL_FILTERS, self._calls)

    # -- REST: paging --------------------------------------------------------------------------

    def _page(self, request: Request, key: str, records: list, filters: Iterable[str],
              everything: Mapping[str, Any]) -> Response:
        """One page of ``records`` (newest first) in Twilio's list envelope.

        Page tokens are ``PA<sid>`` (records after that one) and ``PB<sid>`` (before it), so paging
        stays correct while the app deletes what it has already read.
        """
        query = request.query
        size = parse_page_size(query.get("PageSize"))
        page = parse_int("Page", query.get("Page", "0"))
        records = sorted(records, key=lambda r: r.seq, reverse=True)
        token = query.get("PageToken")
        if token:
            anchor = everything.get(token[2:])
            if token[:2] not in ("PA", "PB") or anchor is None:
                raise TwilioError(400, 20001, f"Invalid PageToken: {token}")
            if token[:2] == "PA":
                rest = [r for r in records if r.seq < anchor.seq]
                items, has_next = rest[:size], len(rest) > size
            else:
                before = [r for r in records if r.seq > anchor.seq]
                items, has_next = before[-size:], True
        else:
            items = records[page * size:(page + 1) * size]
            has_next = len(records) > (page + 1) * size
        pairs = [(name, query[name]) for name in filters if name in query]

        def uri(page_no: int, page_token: str | None = None) -> str:
            tail = [("PageSize", size), ("Page", page_no)] + ([("PageToken", page_token)] if page_token else [])
            return f"{request.path}?{urlencode(pairs + tail)}"

        start = page * size
        return Response(200, {
            "end": start + max(len(items) - 1, 0),
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1, "PA" + items[-1].sid) if has_next and items else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": uri(page - 1, "PB" + items[0].sid) if page > 0 and items else None,
            "start": start,
            "uri": uri(page, token),
            key: [r.resource() for r in items],
        })


_ROUTE_PREFIX = rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)"
# path -> {method: name of the TwilioStandin method answering it}
_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(_ROUTE_PREFIX + r"/Messages\.json$"), {"GET": "_list_messages", "POST": "_create_message"}),
    (re.compile(_ROUTE_PREFIX + r"/Messages/(?P<sid>[^/]+)\.json$"),
     {"GET": "_fetch_message", "POST": "_update_message", "DELETE": "_delete_message"}),
    (re.compile(_ROUTE_PREFIX + r"/Calls\.json$"), {"GET": "_list_calls"}),
    (re.compile(_ROUTE_PREFIX + r"/Calls/(?P<sid>[^/]+)\.json$"), {"GET": "_fetch_call", "DELETE": "_delete_call"}),
    (re.compile(_ROUTE_PREFIX + r"\.json$"), {"GET": "_fetch_account"}),
    (re.compile(_ROUTE_PREFIX + r"/IncomingPhoneNumbers\.json$"), {"GET": "_list_numbers"}),
    (re.compile(_ROUTE_PREFIX + r"/IncomingPhoneNumbers/(?P<sid>[^/]+)\.json$"),
     {"GET": "_fetch_number", "POST": "_update_number"}),
    # messaging.twilio.com/v1 (the twilio client's `messaging` domain, pointed here like `api`)
    (re.compile(r"^/v1/Services$"), {"GET": "_list_services"}),
    (re.compile(r"^/v1/Services/(?P<sid>[^/]+)$"), {"GET": "_fetch_service"}),
    (re.compile(r"^/v1/Services/(?P<sid>[^/]+)/PhoneNumbers$"), {"GET": "_list_service_numbers"}),
]

_DEFAULT_FAULT_MESSAGES = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def validate_new_message(to: str | None, from_: str | None, service: str | None, body: str | None,
                         media: list[str]) -> None:
    """Twilio's checks on ``POST Messages.json``, with its error codes (all HTTP 400)."""
    if not to:
        raise TwilioError(400, 21604, "A 'To' phone number is required.")
    if not from_ and not service:
        raise TwilioError(400, 21603, "A 'From' phone number is required.")
    if not E164.match(to):
        raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not body and not media:
        raise TwilioError(400, 21602, "Message body is required.")
    if body and len(body) > MAX_BODY_CHARS:
        raise TwilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")


def parse_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise TwilioError(400, 20001, f"Invalid value for {name}: {value}") from None
    if number < 0:
        raise TwilioError(400, 20001, f"Invalid value for {name}: {value}")
    return number


def parse_page_size(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    size = parse_int("PageSize", value)
    if size == 0 or size > MAX_PAGE_SIZE:
        raise TwilioError(400, 20007, f"PageSize must be between 1 and {MAX_PAGE_SIZE}")
    return size


# --------------------------------------------------------------------------------------------------
# Control API: lets other processes (Celery workers, a stand-in started with python -m) be steered


def _control_handle(standin: TwilioStandin, request: Request) -> Response:
    try:
        payload = json.loads(request.raw_body or b"{}")
        for (method, pattern), action in _CONTROL_ROUTES:
            match = re.fullmatch(pattern, request.path)
            if match and method == request.method:
                return Response(200, action(standin, payload, *match.groups()))
        return Response(404, {"error": f"no control route {request.method} {request.path}"})
    except KeyError as exc:
        return Response(404, {"error": f"unknown: {exc}"})
    except (ValueError, TypeError, re.error) as exc:
        return Response(400, {"error": str(exc)})


def _control_advance(standin: TwilioStandin, payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("sid"):
        return {"statuses": {payload["sid"]: standin.advance(payload["sid"], payload.get("to"))}}
    return {"statuses": standin.advance_all(payload.get("to"))}


def _control_inject(standin: TwilioStandin, payload: dict[str, Any]) -> dict[str, Any]:
    allowed = {"method", "path_regex", "status", "count", "code", "message", "retry_after", "apply"}
    unknown = set(payload) - allowed
    if unknown:
        raise ValueError(f"unknown inject fields: {sorted(unknown)}")
    standin.inject(**payload)
    return {"ok": True}


_CONTROL_ROUTES: list[tuple[tuple[str, str], Callable[..., Any]]] = [
    (("GET", "/_standin/state"), lambda s, p: s.state()),
    (("POST", "/_standin/inject"), _control_inject),
    (("POST", "/_standin/faults/clear"), lambda s, p: s.clear_faults() or {"ok": True}),
    (("POST", "/_standin/calls"),
     lambda s, p: {"sid": s.add_call(p["from"], p["to"], p.get("status", "in-progress"),
                                     p.get("direction", "inbound"), p.get("parent"))}),
    (("POST", r"/_standin/calls/([^/]+)/status"),
     lambda s, p, sid: s.set_call_status(sid, p["status"]) or {"ok": True}),
    (("POST", "/_standin/outcome"), lambda s, p: s.set_outcome(p["number"], p["outcome"]) or {"ok": True}),
    (("POST", "/_standin/advance"), _control_advance),
    (("POST", "/_standin/reset"), lambda s, p: s.reset() or {"ok": True}),
    (("POST", "/_standin/receive"), lambda s, p: s.receive_text(p["from"], p["to"], p["body"])),
    (("POST", "/_standin/reply"), lambda s, p: {"sid": s.add_reply_message(p["from"], p["to"], p["body"])}),
    (("POST", "/_standin/configure"), lambda s, p: s.configure(**p) or {"ok": True}),
    (("POST", "/_standin/numbers"), lambda s, p: {"sid": s.add_phone_number(p.pop("phone_number"), **p)}),
    (("POST", "/_standin/services"), lambda s, p: {"sid": s.add_messaging_service(p.pop("numbers"), **p)}),
    (("POST", "/_standin/opt-out"), lambda s, p: s.set_opt_out(p.pop("scope"), **p) or {"ok": True}),
]


class StandinControl(_Observations):
    """Drive a stand-in running elsewhere (another process) through its control API.

    Same methods and snapshot shapes as :class:`TwilioStandin`, e.g.
    ``StandinControl(url).add_inbound_message("+447700900123", "+443300000000", "hi")``.
    """

    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        response = self._session.request(method, f"{self.url}/_standin/{path}", json=payload,
                                         timeout=self.timeout)
        if response.status_code == 404:
            raise KeyError(response.json().get("error"))
        if response.status_code != 200:
            raise ValueError(response.json().get("error"))
        return response.json()

    def state(self) -> dict[str, Any]:
        return self._call("GET", "state")

    @property
    def account_sid(self) -> str:
        return self.state()["account_sid"]

    def set_outcome(self, number: str, outcome: str) -> None:
        self._call("POST", "outcome", {"number": number, "outcome": outcome})

    def advance(self, sid: str, to: str | None = None) -> str:
        return self._call("POST", "advance", {"sid": sid, "to": to})["statuses"][sid]

    def advance_all(self, to: str | None = None) -> dict[str, str]:
        return self._call("POST", "advance", {"to": to})["statuses"]

    def add_inbound_message(self, from_: str, to: str, body: str) -> str:
        return self.receive_text(from_, to, body)["MessageSid"]

    def add_call(self, from_: str, to: str, status: str = "in-progress", direction: str = "inbound",
                 parent: str | None = None) -> str:
        return self._call("POST", "calls", {"from": from_, "to": to, "status": status,
                                            "direction": direction, "parent": parent})["sid"]

    def set_call_status(self, sid: str, status: str) -> None:
        self._call("POST", f"calls/{sid}/status", {"status": status})

    def inject(self, method: str = "POST", path_regex: str = r".*", status: int = 500, count: int = 1,
               code: int | None = None, message: str | None = None, retry_after: int | None = None,
               apply: bool = False) -> None:
        self._call("POST", "inject", {"method": method, "path_regex": path_regex, "status": status,
                                      "count": count, "code": code, "message": message,
                                      "retry_after": retry_after, "apply": apply})

    def clear_faults(self) -> None:
        self._call("POST", "faults/clear", {})

    def receive_text(self, from_: str, to: str, body: str) -> dict[str, str]:
        return self._call("POST", "receive", {"from": from_, "to": to, "body": body})

    def add_reply_message(self, from_: str, to: str, body: str) -> str:
        return self._call("POST", "reply", {"from": from_, "to": to, "body": body})["sid"]

    def configure(self, **features: Any) -> None:
        self._call("POST", "configure", {k: sorted(v) if isinstance(v, (set, frozenset)) else v
                                         for k, v in features.items()})

    def add_phone_number(self, phone_number: str, **options: Any) -> str:
        return self._call("POST", "numbers", {"phone_number": phone_number, **options})["sid"]

    def add_messaging_service(self, numbers: list[str], **options: Any) -> str:
        return self._call("POST", "services", {"numbers": numbers, **options})["sid"]

    def set_opt_out(self, scope: str, **options: Any) -> None:
        self._call("POST", "opt-out", {"scope": scope, **options})

    def reset(self) -> None:
        self._call("POST", "reset", {})


# --------------------------------------------------------------------------------------------------
# HTTP plumbing


class _Server(ThreadingHTTPServer):
    """Threaded server with a listen backlog deep enough for many workers connecting at once
    (the stdlib default of 5 makes the kernel drop SYNs, which costs a 1 s retransmit each).

    It keeps the sockets of the connections it serves, so that :meth:`close_connections` can end the
    kept-alive ones when the stand-in stops (their threads would otherwise go on answering)."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, *args: Any, **kwargs: Any):
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._closing = False
        self.accepted = 0  # connections accepted so far (tests check that clients keep theirs alive)
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            if self._closing:
                self.shutdown_request(request)
                return
            self._open.add(request)
            self.accepted += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every open connection: a thread waiting for the next request on one reads end-of-file,
        and one still working on a request cannot send its answer."""
        with self._open_lock:
            self._closing = True
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client


class _Handler(BaseHTTPRequestHandler):
    """Turns stdlib HTTP requests into :class:`Request` and writes :class:`Response` back.

    HTTP/1.1 with keep-alive, as Twilio's API speaks: the twilio client's session keeps one
    connection per thread instead of a TCP connect (and a new server thread) per REST call. Every
    answer is framed by Content-Length (none on a 204, which has no body by definition, RFC 9110
    8.6), a request with ``Connection: close`` (or HTTP/1.0) gets ``Connection: close`` and the
    connection is closed after the answer, and :meth:`TwilioStandin.stop` closes kept-alive
    connections, so a stopped stand-in never answers.
    """

    standin: TwilioStandin
    server_version = "TwilioStandin/1.1"
    protocol_version = "HTTP/1.1"
    # headers and body are two writes: without this a kept-alive connection can stall the body for
    # the client's delayed ACK (Nagle)
    disable_nagle_algorithm = True

    def _dispatch(self) -> None:
        try:
            raw = self._read_body()
        except ValueError:
            self.send_error(400, "Bad request body framing")  # closes the connection: framing is lost
            return
        split = urlsplit(self.path)
        is_form = "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or "")
        request = Request(
            method=self.command,
            path=split.path,
            query={k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
            form=parse_qs(raw.decode(), keep_blank_values=True) if is_form and raw else {},
            raw_body=raw,
            headers=self.headers,
        )
        self._write(self.standin.handle(request))

    def _read_body(self) -> bytes:
        """The request body, by Content-Length or chunked; ValueError if it cannot be framed."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _write(self, response: Response) -> None:
        payload = b"" if response.body is None or response.status in (204, 304) else \
            json.dumps(response.body).encode()
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if payload:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            if response.status not in (204, 304):
                self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if payload:
                self.wfile.write(payload)
        except OSError:  # the client went away (a worker killed mid-request): Twilio would not care either
            self.close_connection = True

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the request log is the stand-in's record."""


# --------------------------------------------------------------------------------------------------
# Pointing the official client at the stand-in


def client_for(target: "TwilioStandin | str", account_sid: str | None = None, auth_token: str | None = None,
               http_client: Any = None):
    """A real ``twilio.rest.Client`` whose REST calls go to the stand-in.

    twilio-python 9 builds every URL as ``Domain.base_url`` + path (``twilio.base.domain.Domain``), and
    ``client.api`` is the Domain for ``https://api.twilio.com``; so replacing ``client.api.base_url`` is
    enough, including for the ``next_page_uri`` links it follows when paging. Edge and region are
    cleared because ``Client.get_hostname`` would otherwise rewrite the host from TWILIO_EDGE/REGION.
    ``target`` is a :class:`TwilioStandin` or the URL of one (then give the credentials).
    """
    from twilio.rest import Client

    url = target if isinstance(target, str) else target.url
    account_sid = account_sid or getattr(target, "account_sid", None)
    auth_token = auth_token or getattr(target, "auth_token", None)
    client = Client(account_sid, auth_token, http_client=http_client)
    client.edge = None
    client.region = None
    client.api.base_url = url
    client.messaging.base_url = url  # Messaging Services (messaging.twilio.com/v1) are served here too
    return client
