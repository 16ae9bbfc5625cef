"""What a simulated call or conversation produced: the events in order (heard, pressed, replies,
dialled numbers, follow-ups kept), and the error when the app answered something Twilio could not follow.

Why a module of its own: transcripts are what `router simulate` prints, what the operators' scenarios
(router/simulator/scenarios.py) assert on and what the tests read; the driver that makes them is
router/simulator/simulate.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers


class SimulationError(Exception):
    """The app answered something Twilio could not follow (an HTTP error, no TwiML), or a bad script."""


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
