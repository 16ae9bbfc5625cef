"""Checks for what a caller in danger hears: safety rules an operator's edit must not quietly break.

Why a module of its own: these rules are about people, not syntax. A frightened caller must hear the
24-hour line offered within seconds and the whole first menu in about half a minute; a fallback must
serve the same people as the line it stands in for (never a victims' line to someone worried about
their own behaviour, never an adult line to a child); a menu label must not repeat hours that would go
stale; every sentence with a service's name in it must read naturally for every service; and the
Welsh (or any second language) must say which phrases a fluent speaker has not reviewed yet.

Each check takes the loaded flows and a Locator (for file:line) and returns Problems; nothing here is
imported by the flow loader or the engine (router/inspect/validation/ sits above them).
"""
from __future__ import annotations

import re
from datetime import datetime

from router import engine
from router.inspect.validation.review import check_review_status
from router.inspect.validation.locate import Locator
from router.definition.flowfile import Problem
from router.definition.model import Flows, MenuNode
from router.definition.hours import LONDON

# How fast the voices speak, measured on the old 106-word greeting (~44 s with its slow safety line):
# about 2.5 words a second, and the safety advice at 90% of that.
WORDS_PER_SECOND = 2.5
SLOW_RATE = 0.9
MAX_WORDS_BEFORE_FIRST_OPTION = 30   # ~12 seconds: the 24-hour line is offered before then
MAX_TOP_MENU_SECONDS = 35            # the whole first menu, safety advice included

HOURS_IN_LABEL = re.compile(r"\b(24|open|opens|hours?|awr|ar agor|\d{1,2}\s?(am|pm|yb|yh))\b", re.I)
DOUBLED_ARTICLE = re.compile(r"\b(the|y|yr)\s+(the|y|yr)\b|'r\s+(y|yr|the)\b", re.I)


def words(text: str) -> int:
    return len(text.split())


def seconds(line: engine.Line) -> float:
    rate = WORDS_PER_SECOND * (SLOW_RATE if line.slow else 1.0)
    return words(line.text) / rate


def check_top_menu_timing(flows: Flows, loc: Locator) -> list[Problem]:
    """The greeting, per language: words before the first option is complete, and the seconds it all takes."""
    problems: list[Problem] = []
    start_node = flows.nodes.get(flows.start)
    if not isinstance(start_node, MenuNode):
        return problems
    for lang in flows.config.languages:
        ctx = engine.Context(flows, engine.VOICE, lang, datetime(2026, 11, 18, 12, 0, tzinfo=LONDON))
        step = engine.start(ctx)
        lines = [line for line in step.lines + step.choices if line.text]
        option_lines = [line for line in step.choices if line.lang == lang]
        heard, before_first = 0, None
        for line in lines:
            if option_lines and line is option_lines[0]:
                key = next((o.key for o in start_node.options if o.next), "1")
                spoken = line.text.split(key, 1)[0]
                before_first = heard + words(spoken) + 1
                break
            heard += words(line.text)
        total = sum(seconds(line) for line in lines)
        if before_first is not None and before_first > MAX_WORDS_BEFORE_FIRST_OPTION:
            problems.append(loc.problem("phrases.yaml", ("phrases", "voice_safety", lang),
                                        f"in {lang}, a caller hears {before_first} words (~{before_first / WORDS_PER_SECOND:.0f} s) "
                                        f"before the first option's key; keep it within {MAX_WORDS_BEFORE_FIRST_OPTION} "
                                        "words so someone with seconds to spare hears how to reach the 24-hour line"))
        if total > MAX_TOP_MENU_SECONDS:
            problems.append(loc.problem("menu.yaml", ("nodes", flows.start),
                                        f"in {lang}, the first menu with its safety advice takes about {total:.0f} s "
                                        f"to say; keep it within {MAX_TOP_MENU_SECONDS} s (shorter labels, fewer "
                                        "options: move some into a sub-menu)"))
    return problems


def check_fallback_audiences(flows: Flows, loc: Locator) -> list[Problem]:
    """A fallback serves the same people: no victims' line for perpetrators, no adult line for children."""
    problems = []
    for sid, service in flows.services.items():
        fallback = flows.services.get(service.fallback or "")
        if fallback is not None and fallback.audience != service.audience:
            problems.append(loc.problem(
                "services.yaml", ("services", sid, "fallback"),
                f"{sid} is for {service.audience} callers but its fallback {fallback.id} is for "
                f"{fallback.audience}: a fallback must serve the same people (never a victims' line to someone "
                "worried about their own behaviour, never an adult line to a child). Choose a fallback with "
                f"`audience: {service.audience}`, or write `fallback: none`"))
    for path, sid in flows.config.emergency_lines():
        line = flows.services.get(sid)
        if line is not None and line.audience != "adults":
            problems.append(loc.problem("config.yaml", path,
                                        f"{sid} is where silent callers and the safety answer go; it must "
                                        "be a line for adults experiencing abuse"))
    return problems


def check_labels_without_hours(flows: Flows, loc: Locator) -> list[Problem]:
    """Hours in a menu label go stale when services.yaml changes; say them from services.yaml only."""
    problems = []
    for node_id, node in flows.nodes.items():
        if not isinstance(node, MenuNode):
            continue
        for i, option in enumerate(node.options):
            for field in ("label", "sms_label"):
                for lang, text in (getattr(option, field) or {}).items():
                    if HOURS_IN_LABEL.search(text):
                        problems.append(loc.problem(
                            "menu.yaml", ("nodes", node_id, "options", i, field, lang),
                            f"option {i + 1} of {node_id} ({lang}) gives hours or opening times in its label "
                            f"({text!r}): they would go stale; callers hear a service's hours from services.yaml"))
    return problems


def check_names_read_naturally(flows: Flows, loc: Locator) -> list[Problem]:
    """Render every phrase with a {name} for every service: no 'the the', 'to the Childline', 'y yr'."""
    problems, reported = [], set()
    for pid, texts in flows.phrases.items():
        for lang, template in texts.items():
            if "{name}" not in template:
                continue
            for service in flows.services.values():
                said = (service.said_as or {}).get(lang) or flows.text(service.name, lang)
                rendered = template.replace("{name}", said)
                if DOUBLED_ARTICLE.search(rendered) or re.search(r"\bthe\s+\{name\}", template, re.I):
                    if (pid, lang) in reported:
                        continue
                    reported.add((pid, lang))
                    problems.append(loc.problem(
                        "phrases.yaml", ("phrases", pid, lang),
                        f"{pid} ({lang}) reads badly for {service.id}: {rendered!r}. Write the phrase without "
                        "'the' before {name}; a service whose name needs one says so in `said_as`"))
    return problems


def check_what_callers_hear(flows: Flows, loc: Locator) -> list[Problem]:
    return (check_fallback_audiences(flows, loc) + check_labels_without_hours(flows, loc)
            + check_names_read_naturally(flows, loc) + check_top_menu_timing(flows, loc)
            + check_review_status(flows, loc))
