"""Test helpers: sign requests exactly as Twilio does, and follow TwiML the way Twilio would, with the one
TwiML player the simulator uses too (router/simulator/callplayer.py): no second interpreter here."""
from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field

from twilio.request_validator import RequestValidator

from router.simulator import callplayer

TOKEN = "test-auth-token-0123456789abcdef"
METRICS_TOKEN = "test-metrics-token-fedcba9876543210"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}   # what Prometheus sends when scraping
ACCOUNT_SID = "AC" + "0" * 31 + "1"
# The keys every process needs outside `make run` (router/settings.py refuses to start without them), as
# the contract's end-to-end checks set them; FLOWS_SIGNING_KEY signs releases and diversions.
STATE_SECRET = "test-state-hash-secret-0123456789abcdef"
FOLLOWUP_KEY = "test-followup-encryption-key-0123456789"
SIGNING_KEY = "test-flows-signing-key-0123456789abcdef"
SECRETS_ENV = {"STATE_HASH_SECRET": STATE_SECRET, "FOLLOWUP_ENCRYPTION_KEY": FOLLOWUP_KEY,
               "FLOWS_SIGNING_KEY": SIGNING_KEY}
BASE = "http://localhost"
HELPLINE_NUMBER = "+443300000111"
# The neutral sender every test deployment sends follow-ups from: the stand-in's default Messaging
# Service (tests/twilio_standin), as a real deployment must (Twilio refuses texts from a 03/0808 number).
FOLLOWUP_SENDER = "MG" + "5" * 32
FOLLOWUP_SENDER_NUMBER = "+447700900001"
MOBILE = "+447400123456"
LANDLINE = "+442071234567"
_sids = itertools.count(1)


def new_sid(prefix: str) -> str:
    return f"{prefix}{next(_sids):032x}"


def signature(url: str, params: dict, token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def post_signed(client, path: str, params: dict, token: str = TOKEN, base: str = BASE, headers=None):
    """POST form params to path, signed over base+path (query included) as Twilio signs it."""
    all_headers = {"X-Twilio-Signature": signature(base + path, params, token)}
    all_headers.update(headers or {})
    return client.post(path, data=params, headers=all_headers, base_url=base)


def parse(document: bytes | str) -> ET.Element:
    root = ET.fromstring(document)
    assert root.tag == "Response", f"not TwiML: {document!r}"
    return root


def said(element: ET.Element) -> list[str]:
    """Every <Say> text under element, prosody included, in order."""
    return [" ".join("".join(say.itertext()).split()) for say in element.iter("Say")]


class _Caller:
    """A caller as router/simulator/callplayer.py's Listener: presses `key` at the first Gather that listens
    (None: presses nothing), and the call to a dialled service ends with `outcome`."""

    def __init__(self, key: str | None = None, outcome: str = "completed", after_window: bool = False):
        self.key, self.outcome, self.after_window = key, outcome, after_window

    def key_at(self, gather, window_key):
        return None if self.after_window and window_key else self.key

    def dial_outcome(self, numbers):
        return self.outcome


@dataclass
class Call:
    """A caller on the line: follows Gather actions, Redirects and Dial actions as Twilio does.

    `press` is a caller who listened to the whole document and then pressed a key into its first
    Gather; `burst` types keys as fast as they come, and router/simulator/callplayer.py (the simulator's player
    too) plays each document as Twilio would: a key typed ahead cuts off what a Gather was saying, and
    `said` shows what was heard whole and what was cut."""

    client: object
    caller: str = MOBILE
    token: str = TOKEN
    call_sid: str = field(default_factory=lambda: new_sid("CA"))
    base: str = BASE
    url: str = "/voice"
    twiml: ET.Element | None = None
    heard: list[str] = field(default_factory=list)
    said: list[callplayer.Said] = field(default_factory=list)  # during bursts: heard, or cut off

    def params(self, **extra) -> dict:
        return {"CallSid": self.call_sid, "AccountSid": ACCOUNT_SID, "From": self.caller,
                "To": HELPLINE_NUMBER, "CallStatus": "in-progress", "Direction": "inbound", **extra}

    def _post(self, url: str, **extra) -> ET.Element:
        self.url = url
        response = post_signed(self.client, url, self.params(**extra), self.token, base=self.base)
        assert response.status_code == 200, response.status_code
        assert response.mimetype in {"application/xml", "text/xml"}
        self.twiml = parse(response.data)
        self.heard = said(self.twiml)
        return self.twiml

    def start(self) -> "Call":
        self._post("/voice")
        return self

    @property
    def gather(self) -> ET.Element | None:
        return self.twiml.find("Gather")

    @property
    def dialled(self) -> list[str]:
        dial = self.twiml.find("Dial")
        return [n.text for n in dial.iter("Number")] if dial is not None else []

    @property
    def hung_up(self) -> bool:
        return self.twiml.find("Hangup") is not None

    def press(self, digits: str, after_window: bool = False) -> "Call":
        """Listen to the document and press one key into its first Gather (played by callplayer), or with
        after_window, into the first one after the brief window that listens for 5 5 / 9 9 9."""
        assert self.gather is not None, f"no Gather to press {digits} into: {self.heard}"
        assert len(digits) == 1, f"one key at a time ({digits!r}): `burst` types several"
        turn = callplayer.play(self.twiml, self.url, _Caller(digits, after_window=after_window), deque())
        assert turn.request is not None and turn.request[1] == {"Digits": digits}, turn.events
        url, extra = turn.request
        self._post(url, **extra)
        return self

    def burst(self, keys: str, typed_ahead: str = callplayer.KEPT) -> "Call":
        """Type `keys` fast (9 9 9 following the 999 advice): the first into this document's first Gather,
        the rest ahead, each taken by the next Gather as it begins (cutting off its words). Keys typed
        while no Gather listens are kept for the next one, or lost (typed_ahead=callplayer.LOST)."""
        assert self.gather is not None, f"no Gather to press {keys[0]} into: {self.heard}"
        pending: deque[str] = deque()  # the keys after the first, typed ahead
        turn = callplayer.play(self.twiml, self.url, callplayer.Burst(keys), pending, keys=typed_ahead)
        assert turn.request is not None, turn.events
        url, extra = turn.request
        self._post(url, **extra)
        while True:
            turn = callplayer.play(self.twiml, self.url, callplayer.Burst(""), pending, keys=typed_ahead)
            self.said.extend(turn.said)
            typed = [value for kind, value in turn.events if kind == "typed"]
            if not typed or turn.request is None:
                return self  # listening now, where the burst left the caller
            url, extra = turn.request
            self._post(url, **extra)

    def silence(self) -> "Call":
        """Say nothing: Twilio falls through the Gather to the verbs after it. A Redirect is followed; a
        Dial there (the safety answer's) is where a silent caller is put through (see `dialled`)."""
        turn = callplayer.play(self.twiml, self.url, _Caller(None), deque())
        assert turn.request is not None or turn.dialled, f"silence leads nowhere: {self.heard}"
        if turn.request is not None and "DialCallStatus" not in turn.request[1]:
            url, extra = turn.request
            self._post(url, **extra)
        return self

    def dial_ends(self, status: str) -> "Call":
        """Press nothing; the call to the dialled service ends with `status` (played by callplayer)."""
        assert self.twiml.find("Dial") is not None, "nothing was dialled"
        turn = callplayer.play(self.twiml, self.url, _Caller(None, outcome=status), deque())
        assert turn.request is not None and "DialCallStatus" in turn.request[1], turn.events
        url, extra = turn.request
        self._post(url, **extra)
        return self

    def text(self) -> str:
        return " ".join(self.heard)


@dataclass
class Texter:
    client: object
    sender: str = MOBILE
    token: str = TOKEN
    base: str = BASE
    replies: list[str] = field(default_factory=list)

    def send(self, body: str, message_sid: str | None = None) -> str:
        sid = message_sid or new_sid("SM")
        params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": self.sender,
                  "To": HELPLINE_NUMBER, "Body": body, "NumMedia": "0"}
        response = post_signed(self.client, "/sms", params, self.token, base=self.base)
        assert response.status_code == 200, response.status_code
        root = parse(response.data)
        messages = root.findall("Message")
        assert len(messages) == 1, response.data
        reply = "".join(messages[0].itertext())
        self.replies.append(reply)
        return reply


# Celery's own broker bookkeeping on the shared Redis (queues, bindings, unacked tasks): written by
# kombu, not by us, and holding task ids and message/call sids only. Checked for numbers and text too.
BROKER_KEYS = ("_kombu.", "celery", "unacked", "unacked_index", "unacked_mutex")


def is_broker_key(key: str) -> bool:
    return key.startswith(BROKER_KEYS)


def restricted_redis_url(redis_url: str, name: str, *rules: str) -> str:
    """The URL of a Redis user `name` that may do everything but what `rules` (ACL rules such as
    "-evalsha") take away: a real refusal by Redis (NOPERM) for one process, where others succeed.
    Remove it with `ACL DELUSER name`."""
    import redis
    from urllib.parse import urlsplit

    redis.Redis.from_url(redis_url).execute_command(
        "ACL", "SETUSER", name, "reset", "on", ">restricted-secret", "~*", "&*", "+@all", *rules)
    parts = urlsplit(redis_url)
    return f"redis://{name}:restricted-secret@{parts.hostname}:{parts.port}{parts.path}"
