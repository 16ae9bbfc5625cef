"""What a person can give the engine, as small typed values: keys pressed, silence, the end of a call
we put them through to, a text.

Why typed values and not loose strings: "" used to mean silence in one place and "no key" in another,
and a dial status, a key and a text body were all `str`. The channels (router/web/voice.py,
router/web/sms.py) translate Twilio's form into these once, and the engine (router/engine/walking.py
`resume`, router/engine/texting.py) never reads a form field.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Keys pressed on a call (Twilio's Digits), or a keypad-like reply by text ("3", "0", "55")."""

    digits: str
    recent: str = ""       # the key pressed just before, when these came during its window (5 5, 9 9 9)
    recent_lang: str = ""  # the language the caller was in when they pressed it


@dataclass(frozen=True)
class Silence:
    """No key pressed before the menu's wait ran out; `attempt` counts the silences in a row (1, 2, ...)."""

    attempt: int = 1


@dataclass(frozen=True)
class DialResult:
    """The call we put the caller through to has ended (Twilio's DialCallStatus: completed, busy,
    no-answer, failed, canceled)."""

    service_id: str
    status: str


@dataclass(frozen=True)
class Text:
    """A text as the person typed it (Twilio's Body); router/engine/texting.py reads what it means."""

    body: str


Input = Keys | Silence | DialResult
"""What a call gives the engine (router/engine/walking.py `resume`); a Text is read by texting.py."""
