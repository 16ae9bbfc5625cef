"""Calls and texts played through the real app, exactly as Twilio would drive its webhooks.

Why through the webhooks and not straight into the engine: what an operator checks must be what a
caller gets, so every request is signed the way Twilio signs it, goes through the signature check, the
channel adapters and the SMS state, and the TwiML that comes back is followed verb by verb (<Say>,
<Gather>, <Redirect>, <Dial>, <Hangup>) the way Twilio follows it, by router/simulator/callplayer.py (the tests'
player too): a key typed ahead ("999" in a script) cuts off what a <Gather> was saying, and the
transcript shows it.

Nothing leaves the machine: follow-up texts and history deletions the app asks for are recorded in the
transcript, never queued or sent. Conversation state lives in memory unless a Redis URL is given.
`router simulate`, `router check` and the tests all use this one driver.
"""
from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Protocol
from urllib.parse import urljoin, urlsplit

import phonenumbers
from flask import Flask
from twilio.request_validator import RequestValidator

from router.simulator import callplayer
from router.web import followups, last_resort as safety
from router.definition import phone
from router.web.app import create_app
from router.inspect.checks import load_checked
from router.definition.hours import LONDON
from router.definition.model import MenuNode
from router.settings import Settings, load_settings
from router.engine.texting import LANGUAGE_WORDS
from router.store.state import redacted_url, make_redis

DEFAULT_FROM = "+447400123456"   # a UK mobile: can be offered follow-up texts (none is ever sent)
HELPLINE_NUMBER = "+441632960000"  # Ofcom's drama range: stands in for the helpline's Twilio number
BASE_URL = "https://localhost"
ACCOUNT_SID = "AC" + "0" * 32
MAX_REQUESTS = 200
DIAL_OUTCOMES = ("completed", "busy", "no-answer", "failed", "canceled")
HANGUP = callplayer.HANGUP


class SimulationError(Exception):
    """The app answered something Twilio could not follow (an HTTP error, no TwiML), or a bad script."""


# ------------------------------------------------------------------ what happened
@dataclass(frozen=True)
class Event:
    kind: str          # heard | pressed | silence | dialled | dial_outcome | sent | read | followup | note | ended
    text: str
    lang: str | None = None
    slow: bool = False
    cut: bool = False   # heard: a key stopped these words as they began (barge-in)

    def __str__(self) -> str:
        if self.kind == "heard" and self.cut:
            return f"CUT OFF BY A KEY, NOT HEARD: {self.text}"
        if self.kind == "heard":
            return f"HEARD{' (slowly)' if self.slow else ''}: {self.text}"
        if self.kind == "read":
            return "REPLY:\n" + "\n".join("  | " + line for line in self.text.split("\n"))
        if self.kind in ("pressed", "silence", "sent", "dial_outcome"):
            return f"> {self.text}"
        return f"[{self.text}]"


@dataclass(frozen=True)
class RecordedFollowup:
    to: str
    send_at: datetime
    when: str
    body: str
    service_id: str


@dataclass
class Transcript:
    channel: str
    events: list[Event] = field(default_factory=list)
    followups: list[RecordedFollowup] = field(default_factory=list)
    dialled: list[str] = field(default_factory=list)   # E.164, in order

    @property
    def heard(self) -> list[str]:
        """Everything the caller heard whole (words a key cut off as they began are not heard)."""
        return [e.text for e in self.events if e.kind == "heard" and not e.cut]

    @property
    def cut(self) -> list[str]:
        """Words a key stopped as they began: the caller never heard them."""
        return [e.text for e in self.events if e.kind == "heard" and e.cut]

    @property
    def replies(self) -> list[str]:
        return [e.text for e in self.events if e.kind == "read"]

    def text(self) -> str:
        return "\n".join(str(e) for e in self.events)


def display_number(e164: str) -> str:
    """+448082000247 -> '0808 2000 247', as a service publishes it."""
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, "GB"), phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        return e164


# ------------------------------------------------------------------ stand-ins for what must not be touched
class RecordingJobs:
    """Takes the place of router.web.jobs.Jobs: records what the app asks for, sends and queues nothing."""

    def __init__(self, state=None, secret: bytes = b"") -> None:
        self.followups: list[RecordedFollowup] = []
        self.cancelled = 0
        self.deleted: list[str] = []
        self.state, self.secret = state, secret  # where to note "texted lately" (discreet replies)

    def schedule_followup(self, *, to: str, from_: str, trigger: str, followup, callback: str,
                          lang: str = "en", **_) -> bool:
        if not phone.can_receive_texts(to):
            return False
        number = phone.normalise_sender(to) or to
        self.followups.append(RecordedFollowup(number, followup.send_at, followup.when, followup.body,
                                               followup.service_id))
        if self.state is not None:  # as router/store/limits.py notes it, so later texts get the discreet answer
            import json

            from router.store.state import recent_key

            self.state.set(recent_key(self.secret, number), json.dumps({"lang": lang}), ex=7 * 24 * 3600)
        return True

    def cancel_followups(self, number: str) -> int:
        mine = phone.normalise_sender(number) or number
        before = len(self.followups)
        self.followups = [f for f in self.followups if f.to != mine]
        self.cancelled += before - len(self.followups)
        return before - len(self.followups)

    def delete_message(self, sid: str) -> bool:
        self.deleted.append(sid)
        return True

    def delete_call(self, sid: str) -> bool:
        self.deleted.append(sid)
        return True

    def __getattr__(self, name: str):
        """Any other background work the app may ask for (Jobs grows): accepted, and nothing is done."""
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


class MemoryRedis:
    """The few Redis commands conversation state uses, in memory, for one simulator session."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def set(self, key: str, value: str, ex: int | None = None, nx: bool = False, **_: object) -> bool | None:
        if nx and key in self.data:
            return None
        self.data[key] = value
        return True

    def delete(self, *keys: str) -> int:
        return sum(self.data.pop(k, None) is not None for k in keys)

    def ping(self) -> bool:
        return True

    def register_script(self, source: str):
        """router.store.state's one Lua script, done in Python; any other script is not for a simulation."""
        from router.store.state import ARRIVE_SCRIPT

        def arrive(keys, args):
            fresh = 1 if args[0] != "1" or self.set(keys[0], "1", nx=True) else 0
            recent = self.get(keys[2]) if len(keys) > 2 else None
            return [fresh, self.get(keys[1]) or "", recent or "", 0, 0]  # no reply limits simulated

        def unknown(*_, **__):
            raise NotImplementedError("MemoryRedis runs only router.store.state's arrival script")

        return arrive if source == ARRIVE_SCRIPT else unknown

    def hgetall(self, key: str) -> dict:
        return {}

    def flushall(self) -> None:
        self.data.clear()


# ------------------------------------------------------------------ where the person's input comes from
class Inputs(Protocol):
    def key(self) -> str | None:
        """A key for a <Gather>: '0'-'9', '*', '#'; None for silence; HANGUP to hang up."""

    def dial_outcome(self, number: str) -> str:
        """How a dialled service's call ended: completed, busy, no-answer, failed, canceled."""

    def text(self) -> str | None:
        """The next text to send; None to stop."""


def parse_script(script: str) -> list[str]:
    """'1, 2,,dial:busy' -> ['1', '2', '', 'dial:busy']: comma-separated, spaces ignored."""
    return [token.strip() for token in script.split(",")] if script.strip() else []


class ScriptInputs:
    """Input from a list: keys ('1', '' or 'silence' for none, 'hangup'), 'dial:<outcome>' after a
    dial (completed if not given), or text bodies. When the list runs out the person hangs up or stops."""

    def __init__(self, tokens: Iterable[str]):
        self.tokens = list(tokens)

    def key(self) -> str | None:
        if not self.tokens:
            return HANGUP
        token = self.tokens.pop(0)
        if token.lower().startswith("dial:"):
            raise SimulationError(f"the script says {token!r} but nothing is being dialled: a key was expected")
        if token.lower() in ("", "-", "silence", "wait"):
            return None
        if token.lower() in (HANGUP, "q"):
            return HANGUP
        if not token or any(key not in "0123456789*#" for key in token):
            raise SimulationError(f"{token!r} is not a key: use 0-9, * or #, several keys typed fast "
                                  "(a burst, e.g. 999), an empty item for silence, or 'hangup'")
        return token

    def peek(self) -> str | None:
        """The next token without using it up (None when there is none)."""
        return self.tokens[0].strip() if self.tokens else None

    def dial_outcome(self, number: str) -> str:
        if self.tokens and self.tokens[0].lower().startswith("dial:"):
            outcome = self.tokens.pop(0).split(":", 1)[1].strip().lower()
            if outcome not in DIAL_OUTCOMES:
                raise SimulationError(f"dial:{outcome} is not an outcome: use {', '.join(DIAL_OUTCOMES)}")
            return outcome
        return "completed"

    def text(self) -> str | None:
        return self.tokens.pop(0) if self.tokens else None


class PrefixInputs:
    """Some keys or texts first (e.g. choosing Welsh), then the person's own input."""

    def __init__(self, first: list[str], then: Inputs):
        self.first, self.then = list(first), then

    def key(self) -> str | None:
        return self.first.pop(0) if self.first else self.then.key()

    def peek(self) -> str | None:
        if self.first:
            return self.first[0]
        peek = getattr(self.then, "peek", None)
        return peek() if peek else None

    def dial_outcome(self, number: str) -> str:
        return self.then.dial_outcome(number)

    def text(self) -> str | None:
        return self.first.pop(0) if self.first else self.then.text()


class _ScriptListener:
    """The person's input as router/simulator/callplayer.py asks for it. In the brief window after a 5 or a 9 a
    person presses only the same key again (5 5, 9 9 9); any other next key waits for the menu."""

    def __init__(self, inputs: Inputs):
        self.inputs = inputs

    def key_at(self, gather, window_key: str) -> str | None:
        if window_key:
            peek = getattr(self.inputs, "peek", None)
            if not peek or peek() != window_key:
                return None
        return self.inputs.key()

    def dial_outcome(self, numbers: list[str]) -> str:
        return self.inputs.dial_outcome(numbers[0])


# ------------------------------------------------------------------ the simulator
SIMULATED_SENDER = "MG" + "0" * 32   # a Messaging Service as a neutral sender, for simulations only


class Simulator:
    """One app, built as in production, answering signed requests through Flask's test client."""

    sender_note: str | None = None   # why texts are not offered here, if they are not (said before a call)
    typed_keys = callplayer.KEPT  # keys typed ahead: kept for the next <Gather>, or lost (callplayer)

    def __init__(self, flows_dir: Path | str | None = None, *, settings: Settings | None = None,
                 redis_url: str | None = None, at: datetime | None = None,
                 diversions: dict | None = None, typed_keys: str = callplayer.KEPT,
                 assume_sender: bool = False):
        """assume_sender: play a deployment that has a sender for texts even if this environment has
        none (`router check`: scenarios check the flows, not the deployment); otherwise the simulation
        answers exactly as the app here would, and says so when it would not offer texts."""
        self.typed_keys = typed_keys
        settings = settings or load_settings()
        settings = replace(settings, auth_token=settings.auth_token or secrets.token_hex(16),
                           public_base_url=None, trust_proxy=False).with_throwaway_secrets()
        if flows_dir is not None:
            settings = replace(settings, flows_dir=Path(flows_dir).resolve())
        self.settings = settings
        self.notes: list[str] = []
        if redis_url:
            client = make_redis(redis_url)
            if not _reachable(client):
                self.notes.append(f"Redis at {redacted_url(redis_url)} is not reachable: texts are answered without memory, "
                                  "as the app does when Redis is down")
        else:
            client = MemoryRedis()
            self.notes.append("conversation state is kept in memory for this simulation only "
                              "(--redis-url to use a Redis)")
        self.redis = client
        self.now = at or datetime.now(LONDON)
        # Exactly this folder, strictly: a broken one is refused here (FlowError), never replaced by
        # the last good release as the web process would.
        flows = load_checked(settings.flows_dir)
        if followups.why_not_offered(settings, flows):  # the app would not offer texts (router/web/followups.py)
            if assume_sender:
                settings = self.settings = replace(settings, followup_sender=SIMULATED_SENDER)
            else:
                self.sender_note = ("no sender for texts is configured (FOLLOWUP_SENDER), so, as the app here "
                                    "would, nobody is offered a text: the number is said instead")
                self.notes.append(self.sender_note)
        self.app: Flask = create_app(settings, flows=flows, clock=lambda: self.now, redis_client=client)
        if diversions:
            self.app.extensions["router"].flows.set_diversions(diversions)
        self.jobs = RecordingJobs(client, settings.state_key_secret())
        self.app.extensions["router"].jobs = self.jobs
        self.client = self.app.test_client()
        self.validator = RequestValidator(settings.auth_token)
        self._sids = 0

    @property
    def flows(self):
        return self.app.extensions["router"].flows.current()

    def display(self, e164: str) -> str:
        """A dialled number as its service publishes it ('0808 2000 247'), with the service's name."""
        for service in self.flows.services.values():
            if service.e164 == e164:
                return f"{service.number}, {self.flows.text(service.name, self.flows.config.default_language)}"
        return display_number(e164)

    def reset(self, at: datetime | None = None) -> None:
        """Forget conversations and recorded work: the next call or text starts afresh."""
        if isinstance(self.redis, MemoryRedis):
            self.redis.flushall()
        self.jobs.__init__(self.jobs.state, self.jobs.secret)
        if at is not None:
            self.now = at

    def _sid(self, prefix: str) -> str:
        self._sids += 1
        return f"{prefix}{secrets.token_hex(12)}{self._sids:08x}"

    base_url = BASE_URL

    def post(self, url: str, params: dict[str, str]) -> str:
        """POST form parameters to `url` signed as Twilio signs them; returns the TwiML text."""
        url = urljoin(self.base_url + "/", url)
        signature = self.validator.compute_signature(url, params)
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = self.client.post(path, base_url=f"{parts.scheme}://{parts.netloc}", data=params,
                                    headers={"X-Twilio-Signature": signature})
        if response.status_code not in (200, 204):
            raise SimulationError(f"POST {path} answered HTTP {response.status_code}: "
                                  f"{response.get_data(as_text=True)[:200]}")
        return response.get_data(as_text=True)

    # -------------------------------------------------------------- a call
    def call(self, inputs: Inputs, caller: str = DEFAULT_FROM, lang: str | None = None,
             on_event: Callable[[Event], None] | None = None) -> Transcript:
        """Ring the helpline and follow the TwiML until the call ends."""
        transcript = Transcript("voice")
        emit = self._emitter(transcript, on_event)
        self._seen_followups = len(self.jobs.followups)
        if lang and lang != self.flows.config.default_language:
            inputs = PrefixInputs([language_key(self.flows, lang)], inputs)
        params = {"CallSid": self._sid("CA"), "AccountSid": ACCOUNT_SID, "From": caller, "To": HELPLINE_NUMBER,
                  "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
        if self.sender_note:
            emit(Event("note", self.sender_note))
        emit(Event("note", f"call from {caller} at {self.now.astimezone(LONDON):%a %d %b %Y %H:%M} (London)"))
        url, body = "/voice", dict(params, CallStatus="in-progress")
        typed_ahead: deque[str] = deque()  # keys of a burst not yet taken by a <Gather>
        for _ in range(MAX_REQUESTS):
            document = self.post(url, body)
            if document.strip() == safety.VOICE_TWIML.strip():
                emit(Event("note", "the app answered with its safety TwiML: something failed (see the log)"))
            step = self._follow_voice(url, document, params, inputs, transcript, emit, typed_ahead)
            self._drain_jobs(transcript, emit)
            if step is None:
                break
            url, body = step
        else:
            raise SimulationError(f"the call went on for {MAX_REQUESTS} requests")
        self.post("/voice/status", dict(params, CallStatus="completed", CallDuration="60"))
        return transcript

    def _follow_voice(self, url, document, params, inputs, transcript, emit, typed_ahead):
        """Play one TwiML document (router/simulator/callplayer.py: barge-in, keys typed ahead); returns the next
        (url, params) to request, or None when the call ends."""
        try:
            root = callplayer.parse(document)
        except ValueError as exc:
            raise SimulationError(f"the app did not answer TwiML: {exc}") from None
        turn = callplayer.play(root, url, _ScriptListener(inputs), typed_ahead, keys=self.typed_keys)
        for kind, value in turn.events:
            if kind == "said":
                emit(Event("heard", value.text, lang=value.lang, slow=value.slow, cut=value.cut))
            elif kind in ("pressed", "typed"):
                emit(Event("pressed", f"press {value}" + (" (typed ahead)" if kind == "typed" else "")))
            elif kind == "silence":
                emit(Event("silence", f"press {value} (ends input)" if value else "(no key pressed)"))
            elif kind == "dialled":
                transcript.dialled.append(value)
                emit(Event("dialled", f"dialling {value} ({self.display(value)})"))
            elif kind == "outcome":
                emit(Event("dial_outcome", f"the call to the service ends: {value}"))
            else:
                emit(Event("note", str(value)))
        if turn.ended in ("caller", "router") or turn.request is None:
            emit(Event("ended", {"caller": "the caller hung up", "router": "the router hung up"}.get(
                turn.ended, "the call ended: nothing more to do")))
            return None
        next_url, extra = turn.request
        body = dict(params, **extra)
        if "DialCallStatus" in extra:
            body.update(DialCallSid=self._sid("CA"),
                        DialCallDuration="120" if extra["DialCallStatus"] == "completed" else "0")
        return next_url, body

    # -------------------------------------------------------------- texts
    def texts(self, inputs: Inputs, sender: str = DEFAULT_FROM, lang: str | None = None,
              on_event: Callable[[Event], None] | None = None) -> Transcript:
        """Text the helpline, reply after reply, until the input runs out."""
        transcript = Transcript("sms")
        emit = self._emitter(transcript, on_event)
        self._seen_followups = len(self.jobs.followups)
        for note in self.notes:
            emit(Event("note", note))
        if lang and lang != self.flows.config.default_language:
            inputs = PrefixInputs([language_word(lang)], inputs)
        emit(Event("note", f"texts from {sender} at {self.now.astimezone(LONDON):%a %d %b %Y %H:%M} (London)"))
        for _ in range(MAX_REQUESTS):
            body = inputs.text()
            if body is None:
                break
            emit(Event("sent", f"you text: {body}"))
            sid = self._sid("SM")
            document = self.post("/sms", {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid,
                                          "AccountSid": ACCOUNT_SID, "From": sender, "To": HELPLINE_NUMBER,
                                          "Body": body, "NumMedia": "0", "NumSegments": "1",
                                          "ApiVersion": "2010-04-01"})
            if document.strip() == safety.SMS_TWIML.strip():
                emit(Event("note", "the app answered with its safety text: something failed (see the log)"))
            for message in _parse(document):
                if message.tag == "Message":
                    emit(Event("read", "".join(message.itertext())))
            self._drain_jobs(transcript, emit)
        return transcript

    # -------------------------------------------------------------- helpers
    def _emitter(self, transcript: Transcript, on_event: Callable[[Event], None] | None):
        def emit(event: Event) -> None:
            transcript.events.append(event)
            if on_event:
                on_event(event)
        return emit

    def _drain_jobs(self, transcript: Transcript, emit) -> None:
        for followup in self.jobs.followups[self._seen_followups:]:
            transcript.followups.append(followup)
            emit(Event("followup", f"follow-up text kept for {followup.send_at.astimezone(LONDON):%a %d %b %H:%M} "
                                   f"to {followup.to} (never sent by the simulator): {followup.body}"))
        self._seen_followups = len(self.jobs.followups)


def _reachable(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - any failure means: not reachable
        return False


def _parse(document: str) -> list[ET.Element]:
    """The verbs of a messaging <Response> (callplayer.parse, the one TwiML reader)."""
    try:
        return list(callplayer.parse(document))
    except ValueError as exc:
        raise SimulationError(f"the app did not answer TwiML: {exc}") from None


def language_key(flows, lang: str) -> str:
    """The key of the start menu that switches the default language to `lang` (how a caller chooses it)."""
    node = flows.nodes.get(flows.start)
    for option in node.options if isinstance(node, MenuNode) else ():
        if option.language and option.language.get(flows.config.default_language) == lang:
            return option.key
    raise SimulationError(f"the start menu has no option that switches to {lang!r}")


def language_word(lang: str) -> str:
    """The word a texter sends to choose `lang` (router/engine/texting.py's LANGUAGE_WORDS)."""
    for word, code in LANGUAGE_WORDS.items():
        if code == lang:
            return word.capitalize()
    raise SimulationError(f"there is no word to choose {lang!r} by text")


def parse_clock(text: str) -> datetime:
    """'2026-12-25 03:00' (London time) -> an aware datetime."""
    try:
        naive = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")
    except ValueError:
        raise ValueError(f"{text!r} is not a time like '2026-12-25 03:00'") from None
    return naive.replace(tzinfo=LONDON)
