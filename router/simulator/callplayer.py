"""Following a call's TwiML as Twilio does, keys and all: the one player behind `router simulate`, the
operators' scenarios and the tests' calls (tests/support.py `Call`).

Why a model of barge-in and not just "the caller pressed 9": what matters to someone following the
999 advice is what they actually hear. Twilio's <Gather> plays its nested <Say> while it listens
(https://www.twilio.com/docs/voice/twiml/gather: "By nesting <Say> or <Play> in your <Gather>, you can
read some text ... while waiting for their input"; only <Say>, <Play> and <Pause> may be nested, error
13320), and the first key stops it: the rest of those words are never said. A <Say> outside any
<Gather> plays whole. Keys typed before the next document starts (a burst: 9 9 9, 5 5, 5 5 5 5) are
not reliably kept: the player can keep them for the next <Gather> (KEPT, the default) or drop the keys
typed while nothing listens (LOST); a journey must read right either way.

So a burst shows exactly where a key cut words off (`Said.cut`), and a test can say "the police advice
was heard whole". Nothing here knows the app: it reads TwiML and says which request comes next.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs, urljoin, urlsplit

HANGUP = "hangup"   # the caller hangs up
WAIT = "wait"       # the caller stops here, listening: the driver decides what comes next
KEPT, LOST = "kept", "lost"
SAYING = ("Say", "Play")


@dataclass(frozen=True)
class Said:
    text: str
    lang: str | None = None
    slow: bool = False
    cut: bool = False   # a key stopped it as it began: the caller did not hear these words


class Listener(Protocol):
    def key_at(self, gather: ET.Element, window_key: str) -> str | None:
        """The caller has heard everything nested in `gather`: the key(s) pressed now. None is silence,
        HANGUP hangs up, WAIT stops the player here; several keys ("999") are a burst: the first is
        pressed here and the rest are typed ahead. `window_key` is set for the brief window after a
        5 or a 9 (router/web/voice.py) in which the same key again means 5 5 / 9 9 9."""

    def dial_outcome(self, numbers: list[str]) -> str:
        """How the call to a dialled service ended: completed, busy, no-answer, failed, canceled."""


@dataclass
class Turn:
    """One document played: what happened in order, and the request Twilio makes next (None: none).

    `events` are (kind, value): ("said", Said), ("pressed", key), ("typed", key: a key typed ahead),
    ("silence", "" or the finishing key), ("dialled", number), ("outcome", dial outcome), ("note", text)."""

    events: list[tuple[str, object]] = field(default_factory=list)
    request: tuple[str, dict[str, str]] | None = None   # (absolute URL, the parameters it adds)
    ended: str = ""     # "" while the call goes on; "router" hung up, "caller" hung up, "end" of TwiML, WAIT
    gather: ET.Element | None = None   # where the player stopped on WAIT

    @property
    def said(self) -> list[Said]:
        return [value for kind, value in self.events if kind == "said" and isinstance(value, Said)]

    @property
    def dialled(self) -> list[str]:
        return [value for kind, value in self.events if kind == "dialled" and isinstance(value, str)]


def parse(document: str) -> ET.Element:
    """A TwiML <Response>; ValueError with the reason when it is not one."""
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise ValueError(f"not TwiML: {exc}: {document[:200]!r}") from None
    if root.tag != "Response":
        raise ValueError(f"<{root.tag}>, not <Response>")
    return root


def said_of(verb: ET.Element, cut: bool = False) -> Said | None:
    text = " ".join("".join(verb.itertext()).split())
    if not text:
        return None
    return Said(text, (verb.get("language") or "")[:2] or None, verb.find("prosody") is not None, cut)


def window_key(gather: ET.Element) -> str:
    """The first key of a possible 5 5 / 9 9 9 that this Gather listens for again (its action's k=)."""
    return parse_qs(urlsplit(gather.get("action") or "").query).get("k", [""])[0]


def play(root: ET.Element, url: str, listener: Listener, typed_ahead: deque[str], *,
         keys: str = KEPT) -> Turn:
    """Play one document from the top, as Twilio would, for a caller with `typed_ahead` keys waiting."""
    turn = Turn()
    for verb in root:
        if verb.tag in SAYING or verb.tag == "Pause":
            words = said_of(verb) if verb.tag in SAYING else None
            if words:
                turn.events.append(("said", words))
            if keys == LOST:
                typed_ahead.clear()  # typed while nothing listened: gone
        elif verb.tag == "Gather":
            key, typed = _gather(verb, listener, typed_ahead, turn)
            if key in (HANGUP, WAIT):
                turn.ended, turn.gather = ("caller" if key == HANGUP else WAIT), verb
                return turn
            finish = verb.get("finishOnKey", "#")
            if key is None or (finish and key in finish):
                turn.events.append(("silence", key or ""))
                if verb.get("actionOnEmptyResult", "false") == "true":
                    turn.request = (urljoin(url, verb.get("action") or url), {"Digits": ""})
                    return turn
                continue  # Twilio goes on with the verb after the <Gather>
            turn.events.append(("typed" if typed else "pressed", key))
            turn.request = (urljoin(url, verb.get("action") or url), {"Digits": key})
            return turn
        elif verb.tag == "Redirect":
            turn.request = (urljoin(url, (verb.text or "").strip()), {})
            return turn
        elif verb.tag == "Dial":
            numbers = [(n.text or "").strip() for n in verb if n.tag == "Number"] or [(verb.text or "").strip()]
            turn.events.extend(("dialled", number) for number in numbers)
            typed_ahead.clear()  # keys pressed during a call go to the person answering it
            outcome = listener.dial_outcome(numbers)
            turn.events.append(("outcome", outcome))
            if verb.get("action"):
                turn.request = (urljoin(url, verb.get("action")), {"DialCallStatus": outcome})
                return turn
        elif verb.tag in ("Hangup", "Reject"):
            turn.ended = "router"
            return turn
        else:
            turn.events.append(("note", f"<{verb.tag}> is not played"))
    turn.ended = "end"
    return turn


def _gather(verb: ET.Element, listener: Listener, typed_ahead: deque[str], turn: Turn) -> tuple[str | None, bool]:
    """The key this Gather gets, and what of its nested words is heard on the way."""
    nested = [said for child in verb if child.tag in SAYING and (said := said_of(child))]
    if typed_ahead:  # a key already typed stops the first words at once; the rest are never said
        if nested:
            turn.events.append(("said", Said(nested[0].text, nested[0].lang, nested[0].slow, cut=True)))
        return typed_ahead.popleft(), True
    turn.events.extend(("said", said) for said in nested)
    key = listener.key_at(verb, window_key(verb))
    if key and key not in (HANGUP, WAIT) and len(key) > 1:
        typed_ahead.extend(key[1:])
        key = key[0]
    return key, False


class Burst:
    """A listener for a burst of keys typed as fast as they come (tests): the first key at the first
    Gather, the rest typed ahead; then it stops (WAIT) wherever it is, listening."""

    def __init__(self, keys: str, outcome: str = "completed"):
        self.keys, self.outcome = keys, outcome

    def key_at(self, gather: ET.Element, window_key: str) -> str | None:
        keys, self.keys = self.keys, ""
        return keys or WAIT

    def dial_outcome(self, numbers: list[str]) -> str:
        return self.outcome
