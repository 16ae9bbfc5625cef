"""Opening hours in Europe/London: is a service open now, when does it next open, how to say its hours.

Services are closed on UK bank holidays unless they are open 24 hours or marked `bank_holidays: open`;
the bank holidays come from the `holidays` package so nobody maintains a calendar by hand. One-off
closures (a day, a range of days, shorter hours on a day) override all of that for their dates, so the
engine asks one question, "open now?", and gets the right answer on Christmas Eve too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Literal, Mapping
from zoneinfo import ZoneInfo

import holidays

LONDON = ZoneInfo("Europe/London")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

Span = tuple[int, int]
"""Minutes after midnight: [start, end)."""


def parse_day(spec: str) -> tuple[Span, ...]:
    """'09:00-12:00, 13:00-17:00' -> ((540, 720), (780, 1020)); 'closed' -> ().

    Raises ValueError saying what is wrong: a bad time, an end before its start, or overlapping spans.
    """
    if not isinstance(spec, str):
        raise ValueError(f"hours must be text like '09:00-17:00', not {spec!r}")
    if spec.strip().lower() == "closed":
        return ()
    spans: list[Span] = []
    for part in spec.split(","):
        match = _RANGE.match(part)
        if not match:
            raise ValueError(f"{part.strip()!r} is not a time range like '09:00-17:00'")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{part.strip()!r} is not a real time of day")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start:
            raise ValueError(f"{part.strip()!r} ends before it starts")
        spans.append((start, end))
    spans.sort()
    for (_, e1), (s2, _) in zip(spans, spans[1:]):
        if s2 < e1:
            raise ValueError(f"time ranges overlap in {spec!r}")
    return tuple(spans)


@lru_cache(maxsize=8)
def bank_holidays(region: str) -> holidays.HolidayBase:
    """UK bank holidays for a region of the UK (ENG, WLS, SCT, NIR); cached, it is built per year lazily."""
    return holidays.country_holidays("GB", subdiv=region)


def uk_regions() -> tuple[str, ...]:
    """The UK's bank-holiday regions the holidays package knows (ENG, NIR, SCT, WLS, ...)."""
    return tuple(holidays.country_holidays("GB").subdivisions)


def is_bank_holiday(day: date, region: str) -> bool:
    """A day off in `region`: when a holiday falls at a weekend only its substitute weekday counts (Boxing
    Day 2026 is Saturday 26 December; the bank holiday is Monday 28 December)."""
    return day in days_off(region, day.year)


OBSERVED = " (observed)"


@lru_cache(maxsize=32)
def days_off(region: str, year: int) -> frozenset[date]:
    """The bank holidays people have off work in `year`. The `holidays` package lists both the day itself
    and the substitute day, named "... (observed)"; a day whose holiday has a substitute is not a day off
    (Christmas Day 2027, a Saturday, is not; Monday 27 December is)."""
    calendar = holidays.country_holidays("GB", subdiv=region, years=year)
    entries = [(day, name) for day, names in calendar.items() for name in names.split("; ")]
    substituted = {name.removesuffix(OBSERVED) for _day, name in entries if name.endswith(OBSERVED)}
    return frozenset(day for day, name in entries if name.endswith(OBSERVED) or name not in substituted)


@dataclass(frozen=True)
class Schedule:
    always: bool
    week: tuple[tuple[Span, ...], ...]  # index 0 = Monday
    open_on_bank_holidays: bool
    # One-off days: (date, spans that day); () means closed all day. They win over the week and
    # bank holidays, and over `always` (a 24-hour line can close for a day too).
    exceptions: tuple[tuple[date, tuple[Span, ...]], ...] = ()

    @classmethod
    def from_spec(cls, always: bool, spec: Mapping[Weekday, str], open_on_bank_holidays: bool,
                  exceptions: dict[date, tuple[Span, ...]] | None = None) -> "Schedule":
        week = tuple(parse_day(spec.get(day, "closed")) for day in DAYS)
        return cls(always=always, week=week, open_on_bank_holidays=open_on_bank_holidays,
                   exceptions=tuple(sorted((exceptions or {}).items())))

    def exception_on(self, day: date) -> tuple[Span, ...] | None:
        """The one-off hours of `day` (() = closed all day), or None when it is an ordinary day."""
        for when, spans in self.exceptions:
            if when == day:
                return spans
        return None

    def spans_on(self, day: date, region: str) -> tuple[Span, ...]:
        if self.exceptions:
            special = self.exception_on(day)
            if special is not None:
                return special
        if self.always:
            return ((0, 24 * 60),)
        if not self.open_on_bank_holidays and is_bank_holiday(day, region):
            return ()
        return self.week[day.weekday()]

    def is_open(self, when: datetime, region: str) -> bool:
        local = when.astimezone(LONDON)
        minute = local.hour * 60 + local.minute
        return any(s <= minute < e for s, e in self.spans_on(local.date(), region))

    def next_opening(self, when: datetime, region: str) -> datetime | None:
        """The next moment (London time) the service opens after `when`; None if it never opens."""
        local = when.astimezone(LONDON)
        minute = local.hour * 60 + local.minute
        for offset in range(0, 15 + len(self.exceptions)):  # a week, a bank holiday, the closures
            day = local.date() + timedelta(days=offset)
            for start, _end in self.spans_on(day, region):
                if offset == 0 and start <= minute:
                    continue
                return datetime(day.year, day.month, day.day, start // 60, start % 60, tzinfo=LONDON)
        return None

    def weekly_groups(self) -> list[tuple[str, str, tuple[Span, ...]]]:
        """Consecutive days with the same hours, e.g. [("mon", "fri", ((600, 1200),)), ...]."""
        groups: list[tuple[str, str, tuple[Span, ...]]] = []
        for index, spans in enumerate(self.week):
            if groups and groups[-1][2] == spans and DAYS.index(groups[-1][1]) == index - 1:
                first, _, same = groups[-1]
                groups[-1] = (first, DAYS[index], same)
            else:
                groups.append((DAYS[index], DAYS[index], spans))
        return [group for group in groups if group[2]]


def clock_text(minute: int) -> str:
    """540 -> '9am', 1230 -> '8.30pm', 720 -> 'noon', 1440/0 -> 'midnight' (plain GSM-7 text)."""
    minute %= 24 * 60
    if minute == 0:
        return "midnight"
    if minute == 12 * 60:
        return "noon"
    hour, mins = divmod(minute, 60)
    suffix = "am" if hour < 12 else "pm"
    hour12 = hour % 12 or 12
    return f"{hour12}{'.%02d' % mins if mins else ''}{suffix}"
