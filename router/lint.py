"""Cross-file checks of a flow folder: what the schema cannot see, but would strand, confuse or cost a
caller or texter.

The schema (model.py) checks each file on its own. Here the files are checked together and against
what the engine actually does: every node is reachable and can be left, every reference exists, every
language is complete, every phrase has the placeholders the engine fills, every fallback chain ends at
a 24-hour service, and every text the router can send (rendered through the engine itself) fits in two
SMS segments without needless UCS-2. load_flows() refuses flows with lint *errors* at start and on
reload; *warnings* are shown by `router validate` and fail only `--strict`.

Every Problem names a file and line from the `lines` map that flowfile.read_folder() builds, so an
operator is sent to the exact place to edit.
"""
from __future__ import annotations

import logging
import string
import unicodedata
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import Iterable, Iterator

import phonenumbers
from phonenumbers import PhoneNumberType

from router import engine, hours as hours_mod
from router.flowfile import FlowError, Path_, Problem, _dotted, _label, load_flows, read_folder
from router.lint_caller import check_caller_safety
from router.model import ConnectNode, EndNode, Flows, MenuNode, SayNode

log = logging.getLogger("router.lint")
ERROR, WARNING = "error", "warning"
LANGUAGE_NAMES = {"en": "English", "cy": "Welsh"}
STALE_AFTER_MONTHS = 6
MAX_SMS_SEGMENTS = 2

# The clocks every text is rendered at (London time): a weekday noon (most services open), a weeknight
# 03:00 (closed, "opens today"), late evening ("opens tomorrow"), a Saturday night ("opens on Monday")
# and Christmas Day, a bank holiday on a Friday ("opens on Tuesday").
CLOCKS: tuple[datetime, ...] = tuple(
    datetime(*parts, tzinfo=hours_mod.LONDON) for parts in
    ((2026, 11, 18, 12, 0), (2026, 11, 18, 3, 0), (2026, 11, 18, 22, 30), (2026, 11, 21, 3, 0),
     (2026, 12, 25, 12, 0)))

# Calls are walked only to find places the engine cannot answer: open, closed at night, a bank holiday.
VOICE_CLOCKS = (CLOCKS[0], CLOCKS[1], CLOCKS[4])

# Every phrase the engine (and sms.py) asks for, with the placeholders it fills in. Kept in step with
# engine.py by hand; tests/test_lint.py renders every place to prove nothing here is missing.
REQUIRED_PHRASES: dict[str, frozenset[str]] = {pid: frozenset(names.split()) for pid, names in {
    "voice_safety": "", "sms_safety": "", "voice_police": "", "police_choices": "key", "sms_police": "",
    "voice_option": "key label", "voice_first_option": "key label", "sms_option": "key label",
    "voice_language_option": "key", "sms_language_option": "key",
    "voice_repeat": "", "sms_repeat": "", "sms_reply_with_number": "",
    "wrong_key": "", "no_input": "", "silent_connecting": "", "quiet_goodbye": "",
    "connecting": "name", "service_closed": "name hours opens", "service_unanswered": "",
    "danger_reminder": "", "offer_retry": "key", "say_number": "name number",
    "offer_fallback": "key name", "offer_followup": "key name", "offer_followup_unanswered": "key", "voice_back_to_menu": "key",
    "offer_followup_after_call": "key", "goodbye": "",
    "voice_ask_when": "morning", "sms_ask_when": "morning", "sms_offer_followup": "key",
    "followup_morning": "time day", "day_today": "", "day_tomorrow": "",
    "followup_confirm_now": "morning", "followup_confirm_later": "morning",
    "followup_confirm_morning": "morning",
    "followup_unavailable": "name number",
    "followup_name": "name", "followup_text": "name number hours",
    "sms_service_info": "name number hours website open_now", "sms_open_now": "",
    "sms_closed_now": "opens", "sms_fallback": "name number", "sms_back_to_menu": "", "sms_stopped": "",
    "hours_always": "", "days_long": "", "days_short": "", "days_long_to": "",
    "day_range_long": "first last", "day_range_short": "first last", "day_pair_long": "first last",
    "weekends_long": "", "all_day_long": "", "all_day_short": "",
    "time_range_long": "start end", "time_range_short": "start end",
    "closed_bank_holidays_long": "", "closed_bank_holidays_short": "",
    "clock_am": "", "clock_pm": "", "clock_midnight": "",
    "clock_morning": "time", "clock_afternoon": "time", "clock_evening": "time",
    "opens_today": "time", "opens_tomorrow": "time", "opens_on": "day time",
    # issue 12: texts that never give a person away (router/engine.py's last section)
    "sms_automatic": "", "sms_discreet": "", "followup_already": "number", "voice_offer_cancel": "key",
    "voice_cancelled": "", "sms_opens_today": "time", "sms_opens_tomorrow": "time", "sms_opens_on": "day time",
}.items()}
WEEKDAY_LISTS = ("days_long", "days_short", "days_long_to")


# ------------------------------------------------------------------ where a problem is
@dataclass(frozen=True)
class Locator:
    """Turns (file name, path in the file) into a Problem with the file's label and the right line."""

    folder: Path
    lines: dict[str, dict[Path_, int]]

    def line(self, name: str, path: Path_) -> int:
        known = self.lines.get(name, {})
        for cut in range(len(path), -1, -1):
            if path[:cut] in known:
                return known[path[:cut]]
        return 1

    def label(self, name: str) -> str:
        return _label(self.folder, name)

    def at(self, name: str, path: Path_) -> str:
        return f"{self.label(name)}:{self.line(name, path)}"

    def problem(self, name: str, path: Path_, reason: str, severity: str = ERROR) -> Problem:
        return Problem(self.label(name), self.line(name, path), _dotted(path), reason, severity)


def lang_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, repr(code))


# ------------------------------------------------------------------ entry point
_CACHE: dict[tuple, tuple[Problem, ...]] = {}


def lint_flows(flows: Flows, folder: Path | str, lines: dict[str, dict[Path_, int]], *,
               today: date | None = None, clocks: tuple[datetime, ...] = CLOCKS) -> list[Problem]:
    """Every problem of a schema-valid set of flows, errors and warnings, sorted by file and line.

    The result is cached by the flows' content hash: the app lints on every start and reload, tests
    start many apps, and rendering every text takes a noticeable fraction of a second.
    """
    today = today or date.today()
    key = (flows.version, str(Path(folder).resolve()), today, clocks)
    if key not in _CACHE:
        if len(_CACHE) > 32:
            _CACHE.clear()
        loc = Locator(Path(folder), lines)
        try:
            found = _lint(flows, loc, today, clocks)
        except Exception as exc:  # noqa: BLE001 - a bug here must never stop the helpline from loading
            log.exception("lint failed")
            found = [loc.problem("config.yaml", (), f"the checks could not finish ({type(exc).__name__}: "
                                 f"{exc}); the schema checks passed", WARNING)]
        _CACHE[key] = tuple(sorted(set(found)))
    return list(_CACHE[key])


def lint_folder(folder: Path | str, today: date | None = None,
                clocks: tuple[datetime, ...] = CLOCKS) -> list[Problem]:
    """What `router validate` shows: the schema problems if the files do not validate, else every lint
    problem (errors and warnings)."""
    folder = Path(folder)
    try:
        flows = load_flows(folder, lint=False)
    except FlowError as exc:
        return exc.problems
    parsed, _problems, _version = read_folder(folder)
    return lint_flows(flows, folder, {name: parsed[name][1] for name in parsed}, today=today, clocks=clocks)


def _lint(flows: Flows, loc: Locator, today: date, clocks: tuple[datetime, ...]) -> list[Problem]:
    problems: list[Problem] = []
    problems += check_references(flows, loc)
    problems += check_menu_tree(flows, loc)
    problems += check_languages(flows, loc)
    problems += check_phrases(flows, loc)
    problems += check_services(flows, loc, today)
    problems += check_config(flows, loc)
    if any(p.severity == ERROR for p in problems):
        return problems  # rendering broken flows would only repeat these errors, or crash
    problems += check_rendering(flows, loc, clocks)
    problems += check_caller_safety(flows, loc)
    return problems


# ------------------------------------------------------------------ references
def check_references(flows: Flows, loc: Locator) -> list[Problem]:
    """A node, menu start, service or fallback named somewhere but never defined."""
    problems = []
    nodes, services = flows.nodes, flows.services
    if flows.start not in nodes:
        problems.append(loc.problem("menu.yaml", ("start",), f"the start node {flows.start!r} is not defined "
                                    f"under nodes ({_known(nodes)})"))
    for node_id, node in nodes.items():
        if isinstance(node, MenuNode):
            for i, option in enumerate(node.options):
                if option.next is not None and option.next not in nodes:
                    problems.append(loc.problem("menu.yaml", ("nodes", node_id, "options", i, "next"),
                                                f"goes to {option.next!r}, which is not defined under nodes "
                                                f"({_known(nodes)})"))
        elif isinstance(node, SayNode) and node.next is not None and node.next not in nodes:
            problems.append(loc.problem("menu.yaml", ("nodes", node_id, "next"),
                                        f"goes to {node.next!r}, which is not defined under nodes"))
        elif isinstance(node, ConnectNode):
            named = [(("nodes", node_id, "service"), node.service)]
            named += [(("nodes", node_id, "by_language", lang), sid) for lang, sid in (node.by_language or {}).items()]
            for path, sid in named:
                if sid not in services:
                    problems.append(loc.problem("menu.yaml", path, f"service {sid!r} is not defined in "
                                                f"services.yaml ({_known(services)})"))
    for sid, service in services.items():
        if service.fallback is not None and service.fallback not in services:
            problems.append(loc.problem("services.yaml", ("services", sid, "fallback"),
                                        f"fallback {service.fallback!r} is not a service defined in this file"))
    if flows.config.emergency_service not in services:
        problems.append(loc.problem("config.yaml", ("emergency_service",),
                                    f"{flows.config.emergency_service!r} is not a service defined in "
                                    f"services.yaml"))
    for lang, sid in flows.config.emergency_service_by_language.items():
        if sid not in services:
            problems.append(loc.problem("config.yaml", ("emergency_service_by_language", lang),
                                        f"{sid!r} is not a service defined in services.yaml"))
    return problems


def _known(ids: Iterable[str]) -> str:
    names = sorted(ids)
    return "defined: " + ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")


# ------------------------------------------------------------------ the menu tree
def node_edges(flows: Flows) -> dict[str, list[str]]:
    """Where a caller can go from each node. A language option starts the menu again in the new language."""
    edges: dict[str, list[str]] = {}
    for node_id, node in flows.nodes.items():
        targets: list[str] = []
        if isinstance(node, MenuNode):
            for option in node.options:
                targets.append(option.next if option.next is not None else flows.start)
        elif isinstance(node, SayNode) and node.next is not None:
            targets.append(node.next)
        edges[node_id] = [t for t in targets if t in flows.nodes]
    return edges


def reachable(edges: dict[str, list[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node in seen or node not in edges:
            continue
        seen.add(node)
        todo.extend(edges[node])
    return seen


def check_menu_tree(flows: Flows, loc: Locator) -> list[Problem]:
    """Unreachable nodes, dead ends, loops with no way out, two options on one key."""
    problems: list[Problem] = []
    edges = node_edges(flows)
    if flows.start not in flows.nodes:
        return problems
    seen = reachable(edges, flows.start)
    for node_id, node in flows.nodes.items():
        path = ("nodes", node_id)
        if node_id not in seen:
            problems.append(loc.problem("menu.yaml", path, "no caller can reach this node: no option or "
                                        "`next` leads here from the start node", WARNING))
        if isinstance(node, SayNode) and node.next is None:
            problems.append(loc.problem("menu.yaml", path, "is a dead end: callers hear it and are then hung "
                                        "up on. Give it `next:` (where to go after), or make it `type: end` "
                                        "if ending the call here is intended"))
        if isinstance(node, MenuNode):
            problems += _duplicate_keys(node_id, node, loc)
    start_node = flows.nodes[flows.start]
    if isinstance(start_node, EndNode):
        problems.append(loc.problem("menu.yaml", ("start",), "the start node is an end node: every caller "
                                    "would hear only the safety advice and be hung up on"))
    problems += _say_cycles(flows, loc)
    problems += _trapped(flows, edges, seen, loc)
    if isinstance(start_node, MenuNode):
        for i, option in enumerate(start_node.options):
            if option.key == engine.SMS_FOLLOWUP_KEY:
                problems.append(loc.problem(
                    "menu.yaml", ("nodes", flows.start, "options", i, "key"),
                    f"after a service's details by text, a reply of {engine.SMS_FOLLOWUP_KEY} asks for a "
                    f"follow-up text, so texters cannot choose this option straight from there", WARNING))
    return problems


def _duplicate_keys(node_id: str, node: MenuNode, loc: Locator) -> list[Problem]:
    problems, first = [], {}
    for i, option in enumerate(node.options):
        if option.key == "#":
            problems.append(loc.problem(
                "menu.yaml", ("nodes", node_id, "options", i, "key"),
                "callers cannot choose # on a call: Twilio's <Gather> takes # to mean 'end of input' and "
                "sends no key, so the caller only hears the menu again. Use a key from 1 to 9"))
        if option.key in first:
            j = first[option.key]
            problems.append(loc.problem(
                "menu.yaml", ("nodes", node_id, "options", i, "key"),
                f"key {option.key} is already used by option {j + 1} of this menu "
                f"(line {loc.line('menu.yaml', ('nodes', node_id, 'options', j, 'key'))}): a key can do one "
                f"thing only, and callers would never reach this option"))
        else:
            first[option.key] = i
    return problems


def _say_cycles(flows: Flows, loc: Locator) -> list[Problem]:
    """Say nodes whose `next` lead back to themselves with no menu between: the engine would loop forever."""
    problems, reported = [], set()
    for node_id, node in flows.nodes.items():
        chain, current = [node_id], node
        while isinstance(current, SayNode) and current.next in flows.nodes:
            if current.next in chain:
                cycle = chain[chain.index(current.next):]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    problems.append(loc.problem(
                        "menu.yaml", ("nodes", min(cycle), "next"),
                        "say nodes " + " -> ".join(cycle + [current.next]) + " lead to each other with no "
                        "menu between: the router would talk in a circle forever"))
                break
            chain.append(current.next)
            current = flows.nodes[current.next]
    return problems


def _trapped(flows: Flows, edges: dict[str, list[str]], seen: set[str], loc: Locator) -> list[Problem]:
    """Reachable nodes from which no path leads to a service or an end: callers can only go round."""
    exits = {nid for nid, node in flows.nodes.items()
             if isinstance(node, (ConnectNode, EndNode)) or (isinstance(node, SayNode) and node.next is None)}
    can_leave = set(exits)
    changed = True
    while changed:
        changed = False
        for nid, targets in edges.items():
            if nid not in can_leave and any(t in can_leave for t in targets):
                can_leave.add(nid)
                changed = True
    trapped = sorted(n for n in seen if n not in can_leave)
    return [loc.problem("menu.yaml", ("nodes", nid),
                        "callers who reach this node can only go round between " + ", ".join(trapped) +
                        ": no option there leads to a service or an end")
            for nid in trapped]


# ------------------------------------------------------------------ languages
def text_fields(flows: Flows) -> Iterator[tuple[str, Path_, dict[str, str], str]]:
    """Every wording given per language: (file, path, texts, severity if a language is missing)."""
    for node_id, node in flows.nodes.items():
        base = ("nodes", node_id)
        if isinstance(node, MenuNode):
            if node.prompt is not None:
                yield "menu.yaml", base + ("prompt",), node.prompt, ERROR
            for i, option in enumerate(node.options):
                for field in ("label", "sms_label"):
                    texts = getattr(option, field)
                    if texts is not None:
                        yield "menu.yaml", base + ("options", i, field), texts, ERROR
        elif isinstance(node, (SayNode, EndNode)) and node.say is not None:
            yield "menu.yaml", base + ("say",), node.say, ERROR
    for sid, service in flows.services.items():
        yield "services.yaml", ("services", sid, "name"), service.name, ERROR
        yield "services.yaml", ("services", sid, "for"), service.for_, WARNING
    for pid, texts in flows.phrases.items():
        yield "phrases.yaml", ("phrases", pid), texts, ERROR


def check_languages(flows: Flows, loc: Locator) -> list[Problem]:
    """Missing or empty translations, languages nobody configured, language options that go nowhere."""
    problems = []
    configured = flows.config.languages
    for name, path, texts, severity in text_fields(flows):
        for lang in configured:
            if not (texts.get(lang) or "").strip():
                problem = "is empty" if lang in texts else f"has no {lang!r} wording"
                fallback = "" if lang == flows.config.default_language else \
                    f": {lang_name(lang)} callers would get the {lang_name(flows.config.default_language)} instead"
                problems.append(loc.problem(name, path + ((lang,) if lang in texts else ()),
                                            f"{problem}{fallback}", severity))
        for lang in texts:
            if lang not in configured:
                problems.append(loc.problem(name, path + (lang,), f"{lang!r} is not one of the configured "
                                            f"languages ({', '.join(configured)}), so it is never used", WARNING))
    for node_id, node in flows.nodes.items():
        if not isinstance(node, MenuNode):
            continue
        for i, option in enumerate(node.options):
            if option.language is not None:
                problems += _language_option(flows, loc, ("nodes", node_id, "options", i, "language"),
                                             option.key, option.language)
    return problems


def _language_option(flows: Flows, loc: Locator, path: Path_, key: str, mapping: dict[str, str]) -> list[Problem]:
    problems = []
    configured = flows.config.languages
    for source, target in mapping.items():
        if target not in configured:
            problems.append(loc.problem("menu.yaml", path + (source,), f"switches to {target!r}, which is not "
                                        f"a configured language ({', '.join(configured)})"))
        elif target == source:
            problems.append(loc.problem("menu.yaml", path + (source,), f"switches {source!r} to itself: "
                                        f"key {key} would only start the menu again", WARNING))
        if source not in configured:
            problems.append(loc.problem("menu.yaml", path + (source,), f"{source!r} is not a configured "
                                        "language, so this line is never used", WARNING))
    for lang in configured:
        if lang not in mapping:
            problems.append(loc.problem("menu.yaml", path, f"has no {lang!r} line: in {lang_name(lang)} key "
                                        f"{key} is not offered and pressing it only repeats the menu", WARNING))
    return problems


# ------------------------------------------------------------------ phrases
def placeholders(template: str) -> set[str]:
    """The {names} in a phrase; raises ValueError with a reason for braces format() cannot use."""
    names = set()
    for _literal, field, _spec, _conv in string.Formatter().parse(template):
        if field is None:
            continue
        if field == "" or field.isdigit():
            raise ValueError("has an empty {} placeholder: write a name inside the braces")
        if not field.isidentifier():
            raise ValueError(f"has a placeholder {{{field}}} that is not a plain name")
        names.add(field)
    return names


def check_phrases(flows: Flows, loc: Locator) -> list[Problem]:
    """Every phrase the engine needs exists, with only the placeholders it fills, the same in every language."""
    problems = []
    for pid, names in REQUIRED_PHRASES.items():
        if pid not in flows.phrases:
            needs = ", ".join("{" + n + "}" for n in sorted(names)) or "no placeholders"
            problems.append(loc.problem("phrases.yaml", ("phrases",), f"the router needs a phrase {pid!r} "
                                        f"({needs}) and this file has none"))
    for pid, texts in flows.phrases.items():
        allowed = REQUIRED_PHRASES.get(pid)
        if allowed is None:
            problems.append(loc.problem("phrases.yaml", ("phrases", pid), "is not a phrase the router uses "
                                        "(check the spelling), so it is never said", WARNING))
        found: dict[str, set[str]] = {}
        for lang, template in texts.items():
            path = ("phrases", pid, lang)
            try:
                found[lang] = placeholders(template)
            except ValueError as exc:
                reason = str(exc) if "placeholder" in str(exc) else \
                    "has a { or } that does not make a placeholder (write {{ or }} for a brace)"
                problems.append(loc.problem("phrases.yaml", path, reason))
                continue
            unknown = found[lang] - allowed if allowed is not None else set()
            if unknown:
                can = ", ".join("{" + n + "}" for n in sorted(allowed)) or "no placeholders"
                problems.append(loc.problem("phrases.yaml", path, "uses " + ", ".join(
                    "{" + n + "}" for n in sorted(unknown)) + f", which the router does not fill in here "
                    f"(it can use {can})"))
            if pid in WEEKDAY_LISTS and len([d for d in template.split(",") if d.strip()]) != 7:
                problems.append(loc.problem("phrases.yaml", path, "must list the seven days Monday to Sunday, "
                                            "separated by commas"))
        problems += _placeholders_agree(flows, loc, pid, found)
    return problems


def _placeholders_agree(flows: Flows, loc: Locator, pid: str, found: dict[str, set[str]]) -> list[Problem]:
    base_lang = flows.config.default_language
    if base_lang not in found:
        return []
    problems = []
    for lang, names in found.items():
        if lang != base_lang and lang in flows.config.languages and names != found[base_lang]:
            def show(s: set[str]) -> str:
                return ", ".join("{" + n + "}" for n in sorted(s)) or "none"
            problems.append(loc.problem(
                "phrases.yaml", ("phrases", pid, lang),
                f"has placeholders {show(names)} but the {lang_name(base_lang)} has {show(found[base_lang])}: "
                f"every language must say the same things"))
    return problems


# ------------------------------------------------------------------ services
def months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def check_services(flows: Flows, loc: Locator, today: date) -> list[Problem]:
    """Unused services, fallback chains, numbers that cost callers, hours that never open, stale details."""
    problems: list[Problem] = []
    used = {n.service for n in flows.nodes.values() if isinstance(n, ConnectNode)}
    used |= {sid for n in flows.nodes.values() if isinstance(n, ConnectNode) for sid in (n.by_language or {}).values()}
    used |= {s.fallback for s in flows.services.values() if s.fallback}
    used.add(flows.config.emergency_service)
    used |= set(flows.config.emergency_service_by_language.values())
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
    problems += _fallback_chains(flows, loc)
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
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if e164 in seen:
        problems.append(loc.problem("services.yaml", path, f"{number!r} is also the number of {seen[e164]!r}: "
                                    "check it was not copied by mistake", WARNING))
    seen.setdefault(e164, sid)
    return problems


def _fallback_chains(flows: Flows, loc: Locator) -> list[Problem]:
    """Every service with hours must fall back, through a chain without cycles, to a 24-hour service."""
    problems, cycles = [], set()
    services = flows.services
    for sid, service in services.items():
        chain = [sid]
        current = service
        while current.fallback in services and current.fallback not in chain:
            chain.append(current.fallback)
            current = services[current.fallback]
        shown = " -> ".join(chain)
        if current.fallback in chain:
            cycle = frozenset(chain[chain.index(current.fallback):])
            if cycle not in cycles:
                cycles.add(cycle)
                problems.append(loc.problem("services.yaml", ("services", current.id, "fallback"),
                                            f"the fallbacks go round in a circle ({shown} -> {current.fallback}): "
                                            "the chain must end at a service open 24 hours"))
            continue
        if current.fallback is not None:
            continue  # an undefined fallback: reported by check_references
        if not current.open_24_hours:
            if current is service and "fallback" in service.model_fields_set:
                continue  # `fallback: none`: no line for the same people is open when this one is not
            if current is service:
                reason = ("has opening hours but no `fallback`: while it is closed callers are offered no "
                          "other service. Add `fallback:` with a service open 24 hours for the same people "
                          f"(audience: {service.audience}), or write `fallback: none` and say in a comment why none fits")
                problems.append(loc.problem("services.yaml", ("services", sid), reason, WARNING))
            else:
                problems.append(loc.problem("services.yaml", ("services", sid, "fallback"),
                                            f"the fallback chain {shown} ends at {current.id!r}, which keeps "
                                            "hours and can be closed too: it must end at a service open 24 hours"))
    return problems


def check_config(flows: Flows, loc: Locator) -> list[Problem]:
    problems = []
    emergency = flows.services.get(flows.config.emergency_service)
    if emergency is not None and not emergency.open_24_hours:
        problems.append(loc.problem("config.yaml", ("emergency_service",),
                                    f"{emergency.id!r} is not open 24 hours (`open_24_hours: true`): callers "
                                    "who say nothing and every closed service rely on it at any hour"))
    return problems  # an unknown bank_holiday_region is refused by the schema (model.Config)


# ------------------------------------------------------------------ texts: GSM-7, UCS-2 and segments
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")  # sent as an escape plus the character: count 2
# Characters that force UCS-2 although a plain GSM-7 character says the same.
PLAIN_EQUIVALENTS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\u00a0": " ", "\u202f": " ", "\u2007": " ", "\u2009": " ", "\u200a": " ", "\u2002": " ",
    "\u2003": " ", "\t": " ", "\u200b": "", "\u200c": "", "\u200d": "", "\ufeff": "", "\u00ad": "",
    "\u2022": "-", "\u00b7": "-", "\u00d7": "x", "\u2192": "->",
}


@dataclass(frozen=True)
class SmsSize:
    encoding: str   # "GSM-7" or "UCS-2"
    units: int      # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int

    @property
    def limit(self) -> int:
        """How many units fit in MAX_SMS_SEGMENTS segments of this encoding."""
        single, part = (160, 153) if self.encoding == "GSM-7" else (70, 67)
        return single if MAX_SMS_SEGMENTS == 1 else part * MAX_SMS_SEGMENTS


GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


def is_gsm7(char: str) -> bool:
    return char in GSM7_ALL


def sms_size(text: str) -> SmsSize:
    """Encoding and segment count as a phone network counts them (160/153 GSM-7, 70/67 UCS-2)."""
    chars = set(text)
    if chars <= GSM7_ALL:
        units = len(text) + sum(text.count(c) for c in chars & GSM7_EXTENSION)
        return SmsSize("GSM-7", units, 1 if units <= 160 else -(-units // 153))
    units = len(text.encode("utf-16-le")) // 2
    return SmsSize("UCS-2", units, 1 if units <= 70 else -(-units // 67))


def plain_letter(char: str) -> str:
    """ŵ -> w, â -> a: a letter without its accent (for what a text would cost without it)."""
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return base if base and all(is_gsm7(c) for c in base) else "?"


def plain_text(text: str) -> str:
    if set(text) <= GSM7_ALL:
        return text
    return "".join(c if is_gsm7(c) else PLAIN_EQUIVALENTS.get(c, plain_letter(c)) for c in text)


def is_letter(char: str) -> bool:
    return unicodedata.category(char)[0] in "LM"


# ------------------------------------------------------------------ rendering every text the router sends
class _Traced(str):
    """Text that remembers which phrase it was made from, to tell an operator what to shorten."""

    phrase_id: str = ""


class _TracingFlows(Flows):
    def phrase(self, phrase_id: str, lang: str, /, **values: object) -> str:
        text = _Traced(super().phrase(phrase_id, lang, **values))
        text.phrase_id = phrase_id
        return text


def tracing(flows: Flows) -> Flows:
    """The same flows, with phrases that remember their id (Service caches its own schedule)."""
    if isinstance(flows, _TracingFlows):
        return flows
    return _TracingFlows(**{f.name: getattr(flows, f.name) for f in fields(flows) if f.init})


@dataclass(frozen=True)
class Reply:
    """One text the router can send, and how it comes about."""

    text: str
    parts: tuple[tuple[str, str], ...]   # (phrase id or "", text) per line, in order
    lang: str
    at: str | None                       # where the texter is after it (None: the conversation ended)
    trigger: str                         # what the texter sent, in words
    can_text: bool
    now: datetime


def sms_text(step: engine.Step) -> str:
    """Exactly what router/sms.py's render() puts in the <Message>."""
    return "\n".join(line.text for line in step.lines + step.choices if line.text)


def _reply(step: engine.Step, trigger: str, ctx: engine.Context) -> Reply:
    parts = tuple((getattr(line.text, "phrase_id", ""), str(line.text))
                  for line in step.lines + step.choices if line.text)
    return Reply(sms_text(step), parts, step.lang, step.at, trigger, ctx.can_text, ctx.now)


ENGINE_PLACE_KEYS = ("1", "2", "3", "8", "9")  # fallback, follow-up, when-choices, SMS follow-up, menu


def keys_to_try(flows: Flows, at: str) -> list[str]:
    """The keys that mean something at `at`, plus 0 (repeat) and one that means nothing.

    At a menu: its option keys. At one of the engine's places after a service: the engine's own keys
    (any other key there behaves as at the start menu, which is tried on its own)."""
    node = flows.nodes.get(at)
    keys = [o.key for o in node.options] if isinstance(node, MenuNode) else list(ENGINE_PLACE_KEYS)
    return keys + ["0", "x", "55"]  # 55: a texter following the 999 advice


def sms_replies(flows: Flows, clocks: Iterable[datetime] = CLOCKS) -> Iterator[Reply]:
    """Every text reply the engine can produce: from the first text, every reply at every place a
    texter can reach, in every language, for texters who can and cannot get follow-ups, at each clock."""
    flows = tracing(flows)
    for now in clocks:
        for can_text in (True, False):
            contexts = {lang: engine.Context(flows, engine.SMS, lang, now, can_text)
                        for lang in flows.config.languages}
            todo: list[tuple[str, str]] = []
            seen: set[tuple[str, str]] = set()

            def visit(step: engine.Step, trigger: str, ctx: engine.Context) -> Iterator[Reply]:
                yield _reply(step, trigger, ctx)
                if step.at and (step.lang, step.at) not in seen:
                    seen.add((step.lang, step.at))
                    todo.append((step.lang, step.at))

            for lang, ctx in contexts.items():
                yield from visit(engine.start(ctx), "a first text", ctx)
            while todo:
                lang, at = todo.pop()
                for key in keys_to_try(flows, at):
                    yield from visit(engine.press(contexts[lang], at, key), f"a reply of {key!r} at {at}",
                                     contexts[lang])


def followup_texts(flows: Flows) -> Iterator[tuple[str, str, str]]:
    """(service id, language, body) of the follow-up text for every service, as schedule_followup writes it."""
    for lang in flows.config.languages:
        ctx = engine.Context(flows, engine.SMS, lang, CLOCKS[0], True)
        for sid, service in flows.services.items():
            yield sid, lang, engine.schedule_followup(ctx, service, "later").followup.body


def voice_walk(flows: Flows, clocks: Iterable[datetime] = CLOCKS) -> Iterator[tuple[str, str, datetime]]:
    """Press every key, stay silent and end every dial at every place a caller can reach, so a place
    the engine cannot answer is found here and not by a caller (who would get the safety TwiML).

    Yields (place, what happens, clock) before each engine call, so a failure can be located."""
    for now in clocks:
        for can_text in (True, False):
            todo = [(lang, flows.start) for lang in flows.config.languages]
            seen = set(todo)
            for lang in flows.config.languages:
                yield flows.start, "a new call", now
                engine.start(engine.Context(flows, engine.VOICE, lang, now, can_text))
            while todo:
                lang, at = todo.pop()
                ctx = engine.Context(flows, engine.VOICE, lang, now, can_text)
                steps = []
                for key in keys_to_try(flows, at):
                    yield at, f"key {key}", now
                    steps.append(engine.press(ctx, at, key))
                for key in sorted(engine.WINDOW_KEYS):  # the second key of 5 5 or 9 9 9
                    yield at, f"key {key} twice", now
                    steps.append(engine.press(ctx, at, key, recent=key, recent_lang=lang))
                yield at, "silence", now
                steps += [engine.silence(ctx, at, 1), engine.silence(ctx, at, 2)]
                for dial in [step.dial for step in steps if step.dial]:
                    for status in ("completed", "busy", "no-answer"):
                        yield at, f"dialling {dial.service_id} ({status})", now
                        steps.append(engine.dial_result(ctx, dial.service_id, status))
                for step in steps:
                    if step.dial and (step.lang, f"dial:{step.dial.service_id}") not in seen:
                        seen.add((step.lang, f"dial:{step.dial.service_id}"))
                        todo.append((step.lang, f"dial:{step.dial.service_id}"))
                    if step.at and (step.lang, step.at) not in seen:
                        seen.add((step.lang, step.at))
                        todo.append((step.lang, step.at))


def check_rendering(flows: Flows, loc: Locator, clocks: tuple[datetime, ...]) -> list[Problem]:
    """Render every text and every call step through the engine: sizes, encodings, and crashes."""
    problems: list[Problem] = []
    flows = tracing(flows)
    walker = voice_walk(flows, VOICE_CLOCKS if clocks == CLOCKS else clocks)
    where: tuple[str, str, datetime] | None = None
    try:
        for where in walker:
            pass
    except Exception as exc:  # noqa: BLE001 - any failure here would reach a caller as the safety TwiML
        place, what, now = where or ("the start", "a call", clocks[0])
        problems.append(loc.problem("menu.yaml", ("nodes", place) if place in flows.nodes else ("start",),
                                    f"the router fails on a call at {place} after {what} ({now:%Y-%m-%d %H:%M}): "
                                    f"{type(exc).__name__}: {exc}"))
        return problems
    sizes = SizeReport(flows, loc)
    try:
        for reply in sms_replies(flows, clocks):
            sizes.add(reply)
        for sid, lang, body in followup_texts(flows):
            sizes.add_followup(sid, lang, body)
    except Exception as exc:  # noqa: BLE001
        problems.append(loc.problem("phrases.yaml", ("phrases",),
                                    f"the router fails while writing a text: {type(exc).__name__}: {exc}"))
    return problems + sizes.problems()


class SizeReport:
    """Collects text-size and encoding findings, one per place and language, keeping the worst case."""

    def __init__(self, flows: Flows, loc: Locator):
        self.flows, self.loc = flows, loc
        self.too_long: dict[tuple, tuple[SmsSize, Problem]] = {}
        self.chars: dict[tuple, tuple[int, Problem]] = {}
        self.sources = list(_sources(flows))
        self.seen: set[tuple] = set()

    def add(self, reply: Reply) -> None:
        name, path = self._anchor(reply)
        if (reply.text, name, path, reply.lang) in self.seen:
            return  # the same words at the same place: already judged
        self.seen.add((reply.text, name, path, reply.lang))
        describe = (f"the text reply to {reply.trigger} ({lang_name(reply.lang)}, {reply.now:%a %d %b %Y %H:%M}, "
                    f"{'from a mobile' if reply.can_text else 'from a number that cannot get texts'})")
        self._check(reply.text, reply.lang, name, path, describe, reply.parts)

    def add_followup(self, sid: str, lang: str, body: str) -> None:
        describe = f"the follow-up text for {sid} ({lang_name(lang)})"
        self._check(body, lang, "phrases.yaml", ("phrases", "followup_text", lang), describe,
                    (("followup_text", body),))

    def _anchor(self, reply: Reply) -> tuple[str, Path_]:
        kind, _, sid = (reply.at or "").partition(":")
        if sid:
            return "services.yaml", ("services", sid)
        if reply.at in self.flows.nodes:
            return "menu.yaml", ("nodes", reply.at)
        longest = max(reply.parts, key=lambda part: len(part[1]), default=("", ""))
        if longest[0]:
            return "phrases.yaml", ("phrases", longest[0], reply.lang)
        return "menu.yaml", ("start",)

    def _check(self, text: str, lang: str, name: str, path: Path_, describe: str,
               parts: tuple[tuple[str, str], ...]) -> None:
        actual, plain = sms_size(text), sms_size(plain_text(text))
        if plain.segments > MAX_SMS_SEGMENTS:
            key = (name, path, lang)
            if key not in self.too_long or plain.units > self.too_long[key][0].units:
                longest = sorted(parts, key=lambda part: -len(part[1]))[:3]
                shown = "; ".join(self._part(pid, part, lang) for pid, part in longest)
                self.too_long[key] = (plain, self.loc.problem(
                    name, path, f"{describe} is {plain.segments} text messages long ({plain.units} characters; "
                    f"{MAX_SMS_SEGMENTS} messages hold {plain.limit}). Its longest parts: {shown}"))
        if actual.encoding == "UCS-2":
            for char in sorted({c for c in text if not is_gsm7(c)}):
                self._ucs2(char, text, lang, name, path, describe, actual)

    def _part(self, pid: str, text: str, lang: str) -> str:
        first = text.split("\n")[0]
        quoted = repr(first if len(first) <= 40 else first[:37] + "...")
        label = self._label_of(text, lang) if pid in ("sms_option", "voice_option") else None
        if label is not None:
            return f"{quoted} ({len(text)}, option label at {self.loc.at('menu.yaml', label)})"
        if pid:
            return f"{quoted} ({len(text)}, phrase {pid} at {self.loc.at('phrases.yaml', ('phrases', pid, lang))})"
        return f"{quoted} ({len(text)})"

    def _label_of(self, text: str, lang: str) -> Path_ | None:
        """The option label (sms_label first) whose wording makes up the choice line `text`."""
        for name, path, source in self.sources:
            if name == "menu.yaml" and path[-1] == lang and path[-2] in ("sms_label", "label") \
                    and text.endswith(" " + source):
                return path
        return None

    def _ucs2(self, char: str, text: str, lang: str, name: str, path: Path_, describe: str,
              actual: SmsSize) -> None:
        shown = f"{char!r} ({unicodedata.name(char, 'U+%04X' % ord(char)).lower()})"
        found = [(n, p) for n, p, source in self.sources if p[-1] == lang and _used_in(char, source, text)]
        for where_name, where_path in found or [(name, path)]:
            if char in PLAIN_EQUIVALENTS or not is_letter(char):
                instead = PLAIN_EQUIVALENTS.get(char)
                fix = f"write {instead!r} instead" if instead else "leave it out"
                reason = (f"{shown} forces {describe} into UCS-2, where a text message holds 70 characters "
                          f"instead of 160 ({actual.segments} messages): {fix}")
                severity = ERROR
            else:
                reason = (f"{shown} is not in the GSM-7 alphabet, so {describe} is sent as UCS-2 "
                          f"(70 characters a message instead of 160) and takes {actual.segments} messages; "
                          f"spell it without the accent in texts if that is acceptable")
                severity = WARNING
            key = (where_name, where_path, char)
            if key not in self.chars or actual.segments > self.chars[key][0]:
                self.chars[key] = (actual.segments, self.loc.problem(where_name, where_path, reason, severity))

    def problems(self) -> list[Problem]:
        return [p for _, p in self.too_long.values()] + [p for _, p in self.chars.values()]


def _sources(flows: Flows) -> Iterator[tuple[str, Path_, str]]:
    """(file, path ending in the language, wording) of every text a reply can be made of."""
    for name, path, texts, _severity in text_fields(flows):
        for lang, text in texts.items():
            yield name, path + (lang,), text


def _used_in(char: str, source: str, text: str) -> bool:
    """Whether the stretch of `source` around `char` (between placeholders) appears in `text`."""
    if char not in source:
        return False
    try:
        chunks = [literal for literal, *_ in string.Formatter().parse(source)]
    except ValueError:
        chunks = [source]
    return any(char in chunk and chunk in text for chunk in chunks)
