"""What callers and texters get, journey by journey, and how two sets of flows differ in it.

Why: before a change goes live (`router apply`, `router rollback`), an operator needs to see what
people will hear and read differently, not a diff of YAML: a renamed phrase, a moved key or new hours
matter only through the journeys they change. Every journey is played through the engine itself (the
code the webhooks run), for calls and texts, in every language, down every key path (and silence on
a call), at every moment that can differ: each opening and closing time of every service over the
coming week, every closure day, the next bank holidays, and three fixed moments. A change to the first
menu, or to how callers reach a 24-hour line, is listed first and never cut from the list.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from router import engine
from router.definition.hours import LONDON, is_bank_holiday
from router.definition.model import Flows, MenuNode

MOMENTS: tuple[tuple[str, datetime], ...] = (
    ("a weekday at noon", datetime(2026, 11, 18, 12, 0, tzinfo=LONDON)),
    ("a weeknight at 3am", datetime(2026, 11, 18, 3, 0, tzinfo=LONDON)),
    ("Christmas Day at noon", datetime(2026, 12, 25, 12, 0, tzinfo=LONDON)),
)
MAX_KEYS = 4           # key presses (or replies): a sub-menu, a service, what is offered after it
AFTER_SERVICE_KEYS = ("1", "2", "8")  # fallback / follow-up offers after a service
SILENCE = "(nothing)"  # a call where nothing is pressed
WEEK_DAYS = 7
BANK_HOLIDAYS_AHEAD = 3
MOMENTS_SHOWN = 3


@dataclass(frozen=True)
class Change:
    journey: str            # "a call in English, pressing 2 then 1"
    moments: tuple[str, ...]
    before: str | None      # None: a journey that did not exist
    after: str | None       # None: a journey that no longer exists
    first: bool = False     # the first menu, silence, or a 24-hour line: listed first, never cut

    def __str__(self) -> str:
        shown = self.moments[:MOMENTS_SHOWN]
        when = ", ".join(shown) + (f" and {len(self.moments) - len(shown)} more times"
                                   if len(self.moments) > len(shown) else "")
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


# ------------------------------------------------------------------ when to listen
def _at(day: date, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=LONDON) + timedelta(minutes=minute)


def moments_for(*all_flows: Flows | None, today: date | None = None) -> tuple[tuple[str, datetime], ...]:
    """Every moment at which the journeys of these flows can differ: each opening and closing time of
    every service over the coming week, each closure day (at its hours' edges, 3am and noon), the next
    bank holidays (3am and noon), and the fixed MOMENTS."""
    today = today or datetime.now(LONDON).date()
    found: dict[datetime, str] = {}
    for flows in all_flows:
        if flows is None:
            continue
        region = flows.config.bank_holiday_region
        days = [today + timedelta(days=n) for n in range(WEEK_DAYS)]
        holidays = [d for d in (today + timedelta(days=n) for n in range(400))
                    if is_bank_holiday(d, region)][:BANK_HOLIDAYS_AHEAD]
        for day in holidays:
            for minute in (3 * 60, 12 * 60):
                found.setdefault(_at(day, minute), f"{day:%a %d %b} (bank holiday) at {minute // 60:02d}:00")
        for service in flows.services.values():
            if service.open_24_hours and not service.closures:
                continue  # no edges to listen at
            closure_days = [d for closure in service.closures for d in closure.days() if d >= today]
            for day in closure_days:
                for minute in (3 * 60, 12 * 60):
                    found.setdefault(_at(day, minute), f"{day:%a %d %b} (a closure) at {minute // 60:02d}:00")
            for day in days + closure_days:
                for start, end in service.schedule.spans_on(day, region):
                    for minute in (start, end):
                        if minute < 24 * 60:
                            found.setdefault(_at(day, minute), f"{_at(day, minute):%a %d %b %H:%M}")
    for label, when in MOMENTS:
        found.setdefault(when, label)
    return tuple((label, when) for when, label in sorted(found.items()))


# ------------------------------------------------------------------ every journey
_CACHE: dict[tuple, dict] = {}


def journeys(flows: Flows, moments: tuple[tuple[str, datetime], ...] = MOMENTS
             ) -> dict[tuple[str, str, str, tuple[str, ...]], str]:
    """(moment, channel, language, keys) -> what is heard or read after those keys. Kept for the last few
    (flows, moments): an apply compares the live flows more than once, and it takes a second or two."""
    key = (flows.version, moments)
    if key not in _CACHE:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _journeys(flows, moments)
    return _CACHE[key]


def _journeys(flows: Flows, moments: tuple[tuple[str, datetime], ...]) -> dict:
    found: dict[tuple[str, str, str, tuple[str, ...]], str] = {}
    for moment, now in moments:
        for channel in (engine.VOICE, engine.SMS):
            for lang in flows.config.languages:
                ctx = engine.Context(flows, channel, lang, now, can_text=True)
                first = engine.start(ctx)
                found[(moment, channel, lang, ())] = step_text(first)
                if channel == engine.VOICE:
                    _silences(ctx, first, found, (moment, channel, lang))
                todo: list[tuple[tuple[str, ...], engine.Step, frozenset[str]]] = [((), first, frozenset())]
                while todo:
                    keys, step, seen = todo.pop()
                    if step.at is None or len(keys) >= MAX_KEYS or step.at in seen:
                        continue
                    for key in _keys_at(flows, step.at):
                        nxt = engine.resume(ctx if step.lang == lang else engine.Context(
                            flows, channel, step.lang, now, can_text=True), step.at, engine.Keys(key))
                        path = keys + (key,)
                        found[(moment, channel, lang, path)] = step_text(nxt)
                        if nxt.lang == lang:
                            todo.append((path, nxt, seen | {step.at}))
    return found


def _silences(ctx: engine.Context, first: engine.Step, found: dict, head: tuple) -> None:
    """A call where nothing is pressed: once (the options again), twice (put through)."""
    step = first
    for attempt in (1, 2):
        step = engine.resume(ctx, step.at, engine.Silence(attempt))
        found[head + ((SILENCE,) * attempt,)] = step_text(step)
        if step.at is None:
            return


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
    if keys[0] == SILENCE:
        return f"{who} in {language}, pressing nothing" + (" twice" if len(keys) > 1 else "")
    verb = "pressing" if channel == engine.VOICE else "replying"
    return f"{who} in {language}, {verb} {' then '.join(keys)}"


# ------------------------------------------------------------------ differences
def diff(old: Flows | None, new: Flows, today: date | None = None) -> list[Change]:
    """Every journey that differs, the same change at several moments given once; the first menu, silence
    and the 24-hour lines first."""
    moments = moments_for(old, new, today=today)
    before = journeys(old, moments) if old is not None else {}
    return changes(before, journeys(new, moments), emergency=_emergency_numbers(old, new))


def changes(before: dict, after: dict, only: set | None = None, emergency: tuple[str, ...] = ()) -> list[Change]:
    """The journeys that differ between two journeys() results (only those in `only`, if given)."""
    names = {"en": "English", "cy": "Welsh"}
    order = {moment: i for i, moment in enumerate(dict.fromkeys(k[0] for k in list(before) + list(after)))}
    grouped: dict[tuple, list[str]] = {}
    for key in sorted(set(before) | set(after), key=lambda k: (k[1], k[2], len(k[3]), k[3])):
        was, now = before.get(key), after.get(key)
        if was == now or (only is not None and key not in only):
            continue
        moment, channel, lang, keys = key
        first = not keys or keys[0] == SILENCE or any(
            number in (text or "") for number in emergency for text in (was, now))
        grouped.setdefault((describe(channel, lang, keys, names), was, now, first), []).append(moment)
    found = [Change(journey, tuple(sorted(moments, key=lambda moment: order[moment])), was, now, first)
             for (journey, was, now, first), moments in grouped.items()]
    return sorted(found, key=lambda c: not c.first)  # stable: the first menu, silence, 24-hour lines first


def _emergency_numbers(*all_flows: Flows | None) -> tuple[str, ...]:
    """The numbers (as dialled) of the 24-hour lines silent callers reach, in any of these flows."""
    numbers = set()
    for flows in all_flows:
        if flows is None:
            continue
        for _path, sid in flows.config.emergency_lines():
            if sid in flows.services:
                numbers.add(flows.services[sid].e164)
    return tuple(sorted(numbers))
