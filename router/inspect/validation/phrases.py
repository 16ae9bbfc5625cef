"""The phrases the engine asks for: each exists, with only the {placeholders} the engine fills in, the
same in every language.

A phrase with an unknown placeholder would fail while answering a caller (the safety TwiML instead of
the menu), so it is refused here.
"""
from __future__ import annotations

import string

from router.inspect.validation.locate import WARNING, Locator, lang_name
from router.definition.flowfile import Problem
from router.definition.model import Flows

# Every phrase the engine (and sms.py) asks for, with the placeholders it fills in. Kept in step with
# engine.py by hand; tests/test_validation.py renders every place to prove nothing here is missing.
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
    "followup_confirm_later": "morning key",
    "followup_confirm_morning": "morning key",
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
    # issue 12: texts that never give a person away (router/engine/__init__.py's last section)
    "sms_automatic": "", "sms_discreet": "", "voice_cancel_failed": "key", "sms_stop_failed": "",
    "sms_neutral_emergency": "", "voice_cancelled": "",
    "sms_stays": "", "sms_not_understood": "", "sms_landline": "number", "sms_crisis": "",
    "voice_followup_confirm_now": "morning key", "voice_followup_confirm_later": "morning key",
    "voice_followup_confirm_morning": "morning key", "sms_opens_today": "time", "sms_opens_tomorrow": "time", "sms_opens_on": "day time",
}.items()}
WEEKDAY_LISTS = ("days_long", "days_short", "days_long_to")


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
                can = ", ".join("{" + n + "}" for n in sorted(allowed or ())) or "no placeholders"
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
