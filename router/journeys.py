"""What callers and texters get, journey by journey, and how two sets of flows differ in it.

Why: before a change goes live (`router apply`, `router rollback`), an operator needs to see what
people will hear and read differently, not a diff of YAML: a renamed phrase, a moved key or new hours
matter only through the journeys they change. Every journey is played through the engine itself (the
code the webhooks run), for calls and texts, in every language, at a few moments that matter.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from router import engine
from router.hours import LONDON
from router.model import Flows, MenuNode

MOMENTS: tuple[tuple[str, datetime], ...] = (
    ("a weekday at noon", datetime(2026, 11, 18, 12, 0, tzinfo=LONDON)),
    ("a weeknight at 3am", datetime(2026, 11, 18, 3, 0, tzinfo=LONDON)),
    ("Christmas Day at noon", datetime(2026, 12, 25, 12, 0, tzinfo=LONDON)),
)
MAX_KEYS = 3           # journeys of up to three key presses (or replies)
AFTER_SERVICE_KEYS = ("1", "2", "8")  # fallback / follow-up offers after a service


@dataclass(frozen=True)
class Change:
    journey: str            # "a call in English, pressing 2 then 1"
    moments: tuple[str, ...]
    before: str | None      # None: a journey that did not exist
    after: str | None       # None: a journey that no longer exists

    def __str__(self) -> str:
        when = ", ".join(self.moments)
        head = f"{self.journey} ({when}):"
        if self.before is None:
            return f"{head}\n    new:    {self.after}"
        if self.after is None:
            return f"{head}\n    gone:   {self.before}"
        return f"{head}\n    before: {self.before}\n    after:  {self.after}"


def step_text(step: engine.Step) -> str:
    words = " ".join(line.text for line in step.lines + step.choices if line.text)
    if step.dial:
        words += f" [puts the caller through to {step.dial.number}]"
    if step.hangup and not step.dial:
        words += " [ends]"
    return " ".join(words.split())


def journeys(flows: Flows) -> dict[tuple[str, str, str, tuple[str, ...]], str]:
    """(moment, channel, language, keys) -> what is heard or read after those keys."""
    found: dict[tuple[str, str, str, tuple[str, ...]], str] = {}
    for moment, now in MOMENTS:
        for channel in (engine.VOICE, engine.SMS):
            for lang in flows.config.languages:
                ctx = engine.Context(flows, channel, lang, now, can_text=True)
                first = engine.start(ctx)
                found[(moment, channel, lang, ())] = step_text(first)
                todo = [((), first)]
                while todo:
                    keys, step = todo.pop()
                    if step.at is None or len(keys) >= MAX_KEYS:
                        continue
                    for key in _keys_at(flows, step.at):
                        nxt = engine.press(ctx if step.lang == lang else engine.Context(
                            flows, channel, step.lang, now, can_text=True), step.at, key)
                        path = keys + (key,)
                        found[(moment, channel, lang, path)] = step_text(nxt)
                        if nxt.lang == lang:
                            todo.append((path, nxt))
    return found


def _keys_at(flows: Flows, at: str) -> list[str]:
    node = flows.nodes.get(at)
    if isinstance(node, MenuNode):
        return [option.key for option in node.options if not option.language]
    return list(AFTER_SERVICE_KEYS)


def describe(channel: str, lang: str, keys: tuple[str, ...], names: dict[str, str]) -> str:
    who = "a call" if channel == engine.VOICE else "a text conversation"
    language = names.get(lang, lang)
    if not keys:
        return f"{who} in {language}, at the start"
    verb = "pressing" if channel == engine.VOICE else "replying"
    return f"{who} in {language}, {verb} {' then '.join(keys)}"


def diff(old: Flows | None, new: Flows) -> list[Change]:
    """Every journey that differs, the same change at several moments given once."""
    return changes(journeys(old) if old is not None else {}, journeys(new))


def changes(before: dict, after: dict, only: set | None = None) -> list[Change]:
    """The journeys that differ between two journeys() results (only those in `only`, if given)."""
    names = {"en": "English", "cy": "Welsh"}
    grouped: dict[tuple, list[str]] = {}
    for key in sorted(set(before) | set(after), key=lambda k: (k[1], k[2], len(k[3]), k[3])):
        was, now = before.get(key), after.get(key)
        if was == now or (only is not None and key not in only):
            continue
        moment, channel, lang, keys = key
        grouped.setdefault((describe(channel, lang, keys, names), was, now), []).append(moment)
    order = [moment for moment, _ in MOMENTS]
    return [Change(journey, tuple(sorted(moments, key=order.index)), was, now)
            for (journey, was, now), moments in grouped.items()]
