"""Where a simulated person's input comes from: a script of keys, silences and dial outcomes for a call,
or of texts; and the listener that hands it to the TwiML player (router/simulator/callplayer.py).

Why a module of its own: `router simulate --script`, the operators' scenarios and the tests all write
input the same way ('1, 2,,dial:busy'), and the rules of a script (what is a key, what a dial outcome)
are checked here once, with errors an operator can act on.
"""
from __future__ import annotations

from typing import Iterable, Protocol

from router.simulator.callplayer import HANGUP
from router.simulator.transcript import SimulationError

DIAL_OUTCOMES = ("completed", "busy", "no-answer", "failed", "canceled")


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


class ScriptListener:
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
