"""The services and their hours: used, open some time, free to call, checked recently.

Numbers and hours reach callers directly: a premium-rate number costs a caller in danger money, hours
that never open send every caller to a fallback, and details not checked for months go stale.
"""
from __future__ import annotations

from datetime import date, timedelta

import phonenumbers
from phonenumbers import PhoneNumberType

from router.definition import hours as hours_mod
from router.inspect.validation.locate import ERROR, WARNING, Locator
from router.definition.flowfile import Problem
from router.definition.hours import DAYS
from router.definition.model import ConnectNode, Flows, Service

STALE_AFTER_MONTHS = 6
MAX_CLOSURE_AHEAD_DAYS = 366


def months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def check_services(flows: Flows, loc: Locator, today: date, editing: bool = False) -> list[Problem]:
    """Unused services, fallback chains, numbers that cost callers, hours that never open, stale details."""
    problems: list[Problem] = []
    used = {n.service for n in flows.nodes.values() if isinstance(n, ConnectNode)}
    used |= {sid for n in flows.nodes.values() if isinstance(n, ConnectNode) for sid in (n.by_language or {}).values()}
    used |= {s.fallback for s in flows.services.values() if s.fallback}
    used |= {sid for _, sid in flows.config.emergency_lines()}
    stale_before = months_before(today, STALE_AFTER_MONTHS)
    numbers: dict[str, str] = {}
    for sid, service in flows.services.items():
        path = ("services", sid)
        if sid not in used:
            problems.append(loc.problem("services.yaml", path, "is not offered by any menu node and is no "
                                        "service's fallback, so nobody is ever sent to it", WARNING))
        if not service.open_24_hours and not service.schedule.weekly_groups():
            problems.append(loc.problem("services.yaml", path + ("hours",), "is closed every day: give the "
                                        "days and times it opens"))
        if service.hours and all((service.hours.get(day) or "").replace(" ", "") == "00:00-24:00" for day in DAYS):
            problems.append(loc.problem(
                "services.yaml", path + ("hours",), "is 00:00-24:00 every day: callers would hear 'midnight to "
                "midnight' and that it is closed on bank holidays",
                hint="remove `hours:` and write `open_24_hours: true` instead"))
        problems += _closures(loc, sid, service, today, {line for _, line in flows.config.emergency_lines()}, editing)
        problems += _number(loc, sid, service.number, numbers)
        if service.checked < stale_before:
            problems.append(loc.problem("services.yaml", path + ("checked",),
                                        f"these details were last checked on {service.checked}, more than "
                                        f"{STALE_AFTER_MONTHS} months ago: confirm the number and hours at "
                                        f"{service.source} and update `checked`", WARNING))
        elif service.checked > today:
            problems.append(loc.problem("services.yaml", path + ("checked",),
                                        f"{service.checked} is in the future: write the date the details "
                                        f"were checked", WARNING))
    return problems


def _number(loc: Locator, sid: str, number: str, seen: dict[str, str]) -> list[Problem]:
    problems = []
    path = ("services", sid, "number")
    parsed = phonenumbers.parse(number, "GB")
    kind = phonenumbers.number_type(parsed)
    if kind in (PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.PAGER):
        problems.append(loc.problem("services.yaml", path, f"{number!r} is a personal or paging number "
                                    "(070/076), charged at a high rate: helplines must be free to call"))
    elif kind == PhoneNumberType.MOBILE:
        problems.append(loc.problem("services.yaml", path, f"{number!r} is a mobile number, which costs "
                                    "many callers more than an 0800/0808 number", WARNING))
    return problems  # the same number on two services: values.check_numbers (an error, at the edited line)


def _closures(loc: Locator, sid: str, service: Service, today: date, emergency: set[str],
              editing: bool = False) -> list[Problem]:
    """One-off closures: none on the emergency service, none in the past or more than a year ahead (a
    mistyped year), no day given twice. A closure that has passed is an error for a change (router
    validate, apply) but only a warning for the flows being served: the running app must not refuse
    yesterday's accepted flows because a date went by."""
    problems: list[Problem] = []
    seen: dict[date, int] = {}
    for i, closure in enumerate(service.closures):
        path = ("services", sid, "closures", i)
        days = closure.days()
        if sid in emergency:
            problems.append(loc.problem(
                "services.yaml", path, f"closes {sid}, the service every closed line and every silent caller "
                "relies on, at any hour", hint=f"to send its callers elsewhere for a while use `router divert "
                f"{sid} --to OTHER --until TIME`; never close it"))
        if days[-1] < today:
            problems.append(loc.problem("services.yaml", path, f"this closure ended on {days[-1]:%a %d %b %Y}, "
                                        "in the past", ERROR if editing else WARNING,
                                        hint="remove it (or correct the year if it is meant to come)"))
        elif days[0] > today + timedelta(days=MAX_CLOSURE_AHEAD_DAYS):
            problems.append(loc.problem("services.yaml", path, f"this closure starts on {days[0]:%a %d %b %Y}, "
                                        "more than a year ahead", hint="check the year; add closures in the year "
                                        "they happen"))
        for day in days:
            if day in seen:
                problems.append(loc.problem(
                    "services.yaml", path, f"{day:%a %d %b %Y} is already in closure {seen[day] + 1} of this "
                    "service; only the later one would count", hint="give each day once"))
                break
            seen[day] = i
    return problems


def closure_notes(flows: Flows, start: date, days: int = 60) -> list[str]:
    """Plain lines for `router validate` and `router simulate`: each closure from `start` for `days` days."""
    notes = []
    for sid, service in flows.services.items():
        name = flows.text(service.name, flows.config.default_language)
        for closure in service.closures:
            covered = [d for d in closure.days() if 0 <= (d - start).days < days]
            if not covered:
                continue
            when = f"{covered[0]:%a %d %b %Y}" if len(covered) == 1 else \
                f"{covered[0]:%a %d %b %Y} to {covered[-1]:%a %d %b %Y}"
            spans = hours_mod.parse_day(closure.hours)
            how = "closed all day" if not spans else "open only " + ", ".join(
                f"{hours_mod.clock_text(a)}-{hours_mod.clock_text(b)}" for a, b in spans)
            notes.append(f"{name} ({sid}): {when}: {how}" + (f" ({closure.note})" if closure.note else ""))
    return notes
