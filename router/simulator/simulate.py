"""Calls and texts played through the real app, exactly as Twilio would drive its webhooks.

Why through the webhooks and not straight into the engine: what an operator checks must be what a
caller gets, so every request is signed the way Twilio signs it, goes through the signature check, the
channel adapters and the SMS state, and the TwiML that comes back is followed verb by verb (<Say>,
<Gather>, <Redirect>, <Dial>, <Hangup>) the way Twilio follows it, by router/simulator/callplayer.py (the tests'
player too): a key typed ahead ("999" in a script) cuts off what a <Gather> was saying, and the
transcript shows it.

Nothing leaves the machine: follow-up texts and history deletions the app asks for are recorded in the
transcript, never queued or sent (router/simulator/recording_jobs.py). Conversation state is kept by the
app's own store code in a real Redis: a private, throw-away server started for the simulation (nothing
written to disk, gone when it ends; router/dev/embedded_redis.py), or the one a Redis URL names. So the
simulator runs the store's own Lua scripts, never a copy of them.
`router simulate`, `router scenarios` and the tests all use this one driver; what it records is
router/simulator/transcript.py, where its input comes from router/simulator/script_inputs.py.
"""
from __future__ import annotations

import secrets
import shutil
import tempfile
import weakref
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Callable
from urllib.parse import urljoin, urlsplit

from flask import Flask
from twilio.request_validator import RequestValidator

from router.definition.hours import LONDON
from router.definition.model import MenuNode
from router.engine.texting import LANGUAGE_WORDS
from router.inspect.validation import load_checked
from router.settings import Settings, load_settings
from router.simulator import callplayer
from router.simulator.recording_jobs import RecordingJobs
from router.simulator.script_inputs import (DIAL_OUTCOMES, Inputs, PrefixInputs, ScriptInputs, ScriptListener,
                                            parse_script)
from router.simulator.transcript import Event, RecordedFollowup, SimulationError, Transcript, display_number
from router.store.connection import make_redis, redacted_url
from router.web import followups
from router.web import last_resort
from router.web.app import create_app

# Names other modules import from here (the CLI, the scenarios, the tests): they live in the modules above.
__all__ = ["ACCOUNT_SID", "BASE_URL", "DEFAULT_FROM", "DIAL_OUTCOMES", "HANGUP", "HELPLINE_NUMBER", "Event",
           "Inputs", "PrefixInputs", "RecordedFollowup", "RecordingJobs", "ScriptInputs", "SimulationError",
           "Simulator", "Transcript", "display_number", "language_key", "language_word", "parse_clock",
           "parse_script"]

DEFAULT_FROM = "+447400123456"   # a UK mobile: can be offered follow-up texts (none is ever sent)
HELPLINE_NUMBER = "+441632960000"  # Ofcom's drama range: stands in for the helpline's Twilio number
BASE_URL = "https://localhost"
ACCOUNT_SID = "AC" + "0" * 32
MAX_REQUESTS = 200
HANGUP = callplayer.HANGUP


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
        none (`router scenarios`: scenarios check the flows, not the deployment); otherwise the simulation
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
            client = self._private_redis()
            self.notes.append("conversation state is kept in memory for this simulation only "
                              "(--redis-url to use a Redis)")
        self.redis = client
        self.private_redis = not redis_url
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
        self.jobs = RecordingJobs()
        self.app.extensions["router"].jobs = self.jobs
        self.client = self.app.test_client()
        self.validator = RequestValidator(settings.auth_token)
        self._sids = 0

    def _private_redis(self):
        """A Redis server of this simulation's own: in memory only (nothing on disk), on 127.0.0.1 with a
        random password, stopped and its folder removed when the simulator goes (or the process ends)."""
        from router.dev.embedded_redis import RedisServer  # dev tooling: only a simulation needs it

        folder = Path(tempfile.mkdtemp(prefix="router-simulate-"))
        server = RedisServer(folder / "redis", persist=False, password=secrets.token_hex(16))
        try:
            server.start()
        except (OSError, RuntimeError, TimeoutError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise SimulationError(f"could not start a Redis for the simulation ({exc}): install the dev "
                                  "extra or put redis-server on PATH, or give --redis-url") from None
        weakref.finalize(self, _stop_private_redis, server, folder)
        return make_redis(server.url, timeout=5.0)

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
        if self.private_redis:
            self.redis.flushdb()
        self.jobs.clear()
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
            if document.strip() == last_resort.VOICE_TWIML.strip():
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
        turn = callplayer.play(root, url, ScriptListener(inputs), typed_ahead, keys=self.typed_keys)
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
            if document.strip() == last_resort.SMS_TWIML.strip():
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


def _stop_private_redis(server, folder: Path) -> None:
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


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
