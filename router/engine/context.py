"""What the engine works with and hands back: the moment it answers in (Context) and the Step it answers
with (Lines to say or write, a Dial, a Followup to book), all plain frozen data.

Why a module of its own: every other engine module (presenting, walking, wording, fallbacks, texts)
needs these types and nothing else from each other; kept here, they import this one module and never
the package face, so the package has no import circle.

A Step holds no caller data (no number, no message), so the channels may keep the documents rendered
from it and the same Step always renders the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from router.definition.model import Flows
from router.engine import grammar

VOICE, SMS = "voice", "sms"


@dataclass(frozen=True)
class Line:
    text: str
    lang: str
    slow: bool = False  # safety advice: spoken slowly and clearly
    whole: bool = False  # advice a burst of keys leads to (5 5, 9 9 9): said where no key can cut it off


@dataclass(frozen=True)
class Dial:
    service_id: str
    number: str  # E.164
    timeout: int


@dataclass(frozen=True)
class Followup:
    """A text the person said yes to: what, when. Holds the number only as long as the work is pending."""

    service_id: str
    when: str  # now | later | morning
    send_at: datetime
    body: str


@dataclass(frozen=True)
class Step:
    at: str | None            # where the next key is read; None when this step ends the conversation
    lang: str
    lines: tuple[Line, ...] = ()
    choices: tuple[Line, ...] = ()
    dial: Dial | None = None
    followup: Followup | None = None
    hangup: bool = False
    events: tuple[tuple[str, str], ...] = field(default=())  # (metric, label) for aggregate counters
    window: str = ""       # voice: the key that led here and may begin 5 5 or 9 9 9; listen for it again
    window_lang: str = ""  # the language the caller was in when they pressed it

    @property
    def window_at(self) -> str | None:
        """Where a second key pressed during the window is read: this step's place, or its dial."""
        if self.at:
            return self.at
        return f"dial:{self.dial.service_id}" if self.dial else None

    def with_prefix(self, *lines: Line) -> "Step":
        return replace(self, lines=tuple(lines) + self.lines)


class Answer(Protocol):
    """A yes or no worked out only when asked (router/definition/phone.py TextableLater): most steps
    never ask whether the person can be texted, and finding out costs a number parse."""

    def __bool__(self) -> bool: ...


@dataclass(frozen=True)
class Context:
    """What the engine may know about the moment, never who the person is."""

    flows: Flows
    channel: str
    lang: str
    now: datetime
    can_text: bool | Answer = False

    def say(self, phrase_id: str, /, **values: object) -> Line:
        text = self.flows.phrase(phrase_id, self.lang, **values)
        name = values.get("name")
        if isinstance(name, str):
            text = grammar.close_apposition(text, name)
        rules = grammar.GRAMMAR.get(self.lang)
        return Line(grammar.sentence(rules(text) if rules else text), self.lang)

    @property
    def region(self) -> str:
        return self.flows.config.bank_holiday_region
