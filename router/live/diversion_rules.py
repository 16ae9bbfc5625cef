"""Which diversions are safe, what callers get during one, and whether the 24-hour lines are protected.

Why a module of its own: `router divert` must refuse what `fallback:` refuses in services.yaml (a
line for other people, a line that is closed when callers reach it), and must never take the 24-hour
line away from silent callers; and the web process must say so (/healthz `degraded`, a metric, an
alert) if such a diversion got in anyway, e.g. written straight into Redis. Both use the rules here.
A diversion answers every caller of SERVICE with the service it is diverted to (diverted() below):
its hours, its audience, its fallback chain. So the rules are the fallback rules, judged over the
diversion's own time window.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from router.definition.hours import LONDON, Schedule
from router.definition.model import Flows, Service

MAX_CLASHES_SHOWN = 4
AUDIENCES = {"adults": "adults experiencing abuse (or worried about someone)", "children": "children",
             "own_behaviour": "people worried about their own behaviour"}

DEFAULT_DIVERSION = timedelta(hours=12)
MAX_DIVERSION = timedelta(days=7)


@dataclass(frozen=True)
class Diversion:
    service: str
    to: str
    until: datetime      # aware, UTC
    who: str = ""
    made_at: datetime | None = None   # signed with it: a diversion lasts at most MAX_DIVERSION from then

    def active(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(timezone.utc)) < self.until

    def line(self) -> str:
        return f"{self.service} -> {self.to} until {self.until.astimezone(LONDON):%a %d %b %Y %H:%M} (London)"


def diverted(flows: Flows, active: dict[str, Diversion]) -> Flows:
    """The same flows with each diverted service answered by the service it is diverted to: a caller
    choosing it is put through to (or texted the details of) the other, and fallbacks to it go there too.
    Diversions naming a service these flows do not have are ignored."""
    usable = {sid: d for sid, d in active.items() if sid in flows.services and d.to in flows.services}
    if not usable:
        return flows
    services = dict(flows.services)
    for sid, diversion in usable.items():
        services[sid] = flows.services[diversion.to]
    return Flows(config=flows.config, services=services, start=flows.start, nodes=flows.nodes,
                 phrases=flows.phrases, version=flows.version)


def _at(day: date, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=LONDON) + timedelta(minutes=minute)


def _minus(span: tuple[int, int], holes: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    """The parts of `span` not covered by `holes` (sorted, non-overlapping spans of one day)."""
    parts, (start, end) = [], span
    for h_start, h_end in holes:
        if h_end <= start or h_start >= end:
            continue
        if h_start > start:
            parts.append((start, h_start))
        start = max(start, h_end)
    if start < end:
        parts.append((start, end))
    return parts


def uncovered(source: Schedule, target: Schedule, region: str, start: datetime,
              end: datetime) -> list[tuple[datetime, datetime]]:
    """The times between `start` and `end` when `source` would be open and `target` is closed: when
    callers of a service diverted to `target` would hear that it is closed."""
    found: list[tuple[datetime, datetime]] = []
    day, last = start.astimezone(LONDON).date(), end.astimezone(LONDON).date()
    while day <= last:
        for span in source.spans_on(day, region):
            for a, b in _minus(span, target.spans_on(day, region)):
                lo, hi = max(_at(day, a), start), min(_at(day, b), end)
                if lo >= hi:
                    continue
                if found and found[-1][1] >= lo:
                    found[-1] = (found[-1][0], max(found[-1][1], hi))
                else:
                    found.append((lo, hi))
        day += timedelta(days=1)
    return found


def _when(a: datetime, b: datetime) -> str:
    a, b = a.astimezone(LONDON), b.astimezone(LONDON)
    if a.date() == b.date() or (b - a <= timedelta(hours=24) and b.time() == datetime.min.time()):
        return f"{a:%a %d %b} {a:%H:%M}-{'24:00' if b.date() != a.date() else f'{b:%H:%M}'}"
    return f"{a:%a %d %b %H:%M} to {b:%a %d %b %H:%M}"


def emergency_line_ids(flows: Flows) -> dict[str, str]:
    """Service id -> where config.yaml names it as a 24-hour line silent callers reach."""
    found: dict[str, str] = {}
    for path, sid in flows.config.emergency_lines():
        found.setdefault(sid, ".".join(path))
    return found


def _candidates(flows: Flows, service: Service, exclude: set[str]) -> list[str]:
    return [sid for sid, s in flows.services.items()
            if s.open_24_hours and s.audience == service.audience and sid not in exclude]


def check_diversion(flows: Flows, service: str, to: str, until: datetime, now: datetime,
                    active: dict[str, Diversion] | None = None) -> list[str]:
    """Why `router divert SERVICE --to TO --until UNTIL` must be refused, in plain English (empty: it may go)."""
    problems = []
    for sid in (service, to):
        if sid not in flows.services:
            problems.append(f"{sid!r} is not a service in the live flows ({', '.join(sorted(flows.services))})")
    if service == to:
        problems.append("a service cannot be diverted to itself")
    if until <= now:
        problems.append(f"--until {until.astimezone(LONDON):%Y-%m-%d %H:%M} is in the past")
    elif until - now > MAX_DIVERSION:
        problems.append("a diversion lasts at most 7 days: for longer, change services.yaml and apply it")
    if problems:
        return problems
    source, target = flows.services[service], flows.services[to]
    others = {sid: d for sid, d in (active or {}).items() if sid != service and d.active(now)}
    if to in others and others[to].to == service:
        problems.append(f"{to} is diverted to {service}: the two would send callers round in a circle. End "
                        f"that diversion first (router undivert {to})")
    elif to in others:
        problems.append(f"{to} is itself diverted to {others[to].to}: its callers are not answered there now. "
                        f"Divert {service} to {others[to].to} instead, or end that diversion first "
                        f"(router undivert {to})")
    leaning = sorted(sid for sid, d in others.items() if d.to == service)
    if leaning:
        problems.append(f"{', '.join(leaning)} {'is' if len(leaning) == 1 else 'are'} diverted to {service}: "
                        f"divert {'it' if len(leaning) == 1 else 'them'} elsewhere first, or the callers "
                        f"would reach {service}'s own line, which is down")
    suggest = _candidates(flows, source, {service, to})
    hint = f" (open 24 hours for the same people: {', '.join(suggest)})" if suggest else ""
    if target.audience != source.audience:
        problems.append(f"{service} is for {AUDIENCES[source.audience]} but {to} is for "
                        f"{AUDIENCES[target.audience]}: a diversion, "
                        "like a fallback, must serve the same people (never a victims' line to someone worried "
                        f"about their own behaviour, never an adult line to a child). Divert to a service with "
                        f"audience: {source.audience}{hint}")
    emergency = emergency_line_ids(flows)
    if service in emergency and not target.open_24_hours:
        problems.append(f"{service} is the 24-hour line that silent callers and the 999 path reach "
                        f"({emergency[service]} in config.yaml): it can be diverted only to a line open 24 hours "
                        f"for the same people{hint}")
    elif not target.open_24_hours:
        region = flows.config.bank_holiday_region
        clashes = uncovered(source.schedule, target.schedule, region, now, until)
        if clashes:
            shown = ", ".join(_when(a, b) for a, b in clashes[:MAX_CLASHES_SHOWN])
            more = f" and {len(clashes) - MAX_CLASHES_SHOWN} more" if len(clashes) > MAX_CLASHES_SHOWN else ""
            problems.append(f"{to} is closed while {service}'s callers would reach it ({shown}{more}, London "
                            f"time): they would hear that {to} is closed. Divert to a line open then{hint}, "
                            "or end the diversion before the first of those times with --until")
    return problems


def _name(flows: Flows, service: Service) -> str:
    return flows.text(service.name, flows.config.default_language)


def what_callers_get(flows: Flows, diversion: Diversion) -> str:
    """The true note `router divert` prints: who gets what, while the diversion lasts."""
    source, target = flows.services[diversion.service], flows.services[diversion.to]
    served = diverted(flows, {diversion.service: diversion})
    note = (f"callers who choose {_name(flows, source)} are put through to {_name(flows, target)} "
            f"({target.number}), and texters get its details")
    if target.open_24_hours:
        note += ", at any hour"
    else:
        chain = [s for s in _fallbacks(served, target)]
        offered = (f"are offered {' or, if that is closed too, '.join(_name(flows, s) for s in chain)}" if chain
                   else "are offered no other line")
        note += f"; whenever {_name(flows, target)} is closed they hear so and {offered}"
    if diversion.service in emergency_line_ids(flows):
        note += (f". Silent callers are put through to {_name(flows, target)} too; /healthz says degraded and "
                 "the on-call alert fires until the diversion ends")
    return note + "."


def _fallbacks(flows: Flows, service: Service) -> list[Service]:
    chain, seen, current = [], {service.id}, service
    while current.fallback and current.fallback in flows.services and current.fallback not in seen:
        seen.add(current.fallback)
        current = flows.services[current.fallback]
        chain.append(current)
        if current.open_24_hours:
            break
    return chain


def unsafe_diversions(flows: Flows | None, active: dict[str, Diversion]) -> dict[str, str]:
    """Diversions in force that `router divert` would refuse whatever the time: another audience, or a
    24-hour line sent to a line that keeps hours. The web process ignores them (service id -> why): one
    written straight into Redis must not take the 24-hour line away either."""
    if flows is None:
        return {}
    emergency = emergency_line_ids(flows)
    found = {}
    for sid, diversion in active.items():
        source, target = flows.services.get(sid), flows.services.get(diversion.to)
        if source is None or target is None:
            continue
        if target.audience != source.audience:
            found[sid] = (f"a diversion against the rules is ignored: {sid} to {diversion.to}, which is for "
                          f"{AUDIENCES[target.audience]}, not {AUDIENCES[source.audience]}")
        elif sid in emergency and not target.open_24_hours:
            found[sid] = (f"a diversion against the rules is ignored: the 24-hour line {sid} to {diversion.to}, "
                          "which is not open 24 hours")
    return found


def emergency_lines_down(base: Flows | None, active: dict[str, Diversion],
                         now: datetime) -> list[str]:
    """Why silent callers may not reach a 24-hour line now: each emergency line that is diverted, or that
    (as served, diversions included) is closed. Empty when every one is answered as configured."""
    return list(emergency_lines_down_by_service(base, active, now).values())


def emergency_lines_down_by_service(base: Flows | None, active: dict[str, Diversion],
                                    now: datetime) -> dict[str, str]:
    """emergency_lines_down(), keyed by the service id (router status names the command to end it)."""
    if base is None:
        return {}
    in_force = {sid: d for sid, d in active.items() if d.active(now)}
    ignored = unsafe_diversions(base, in_force)
    served = diverted(base, {sid: d for sid, d in in_force.items() if sid not in ignored})
    found = {}
    for sid in emergency_line_ids(base):
        if sid not in base.services:
            continue
        diversion = in_force.get(sid)
        if diversion is not None and sid in ignored:
            found[sid] = (f"the 24-hour line {sid} is diverted against the rules, so the diversion is ignored: "
                          f"callers still reach {sid}, not {diversion.to}")
        elif diversion is not None:
            found[sid] = f"the 24-hour line {sid} is diverted to {diversion.to}"
        elif not served.services[sid].schedule.is_open(now, base.config.bank_holiday_region):
            found[sid] = f"the 24-hour line {sid} is closed now"
    return found
