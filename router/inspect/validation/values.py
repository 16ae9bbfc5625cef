"""Values checked for what they are, not only for their form: numbers, voices, Welsh that is English.

Why: a value can be well formed and still wrong for a caller in danger. "0800 999 542" (a digit short)
is a valid UK freephone number to phonenumbers, and dials a stranger; "O800 ..." with the letter O is
read aloud and texted as written; Childline's number pasted onto Galop sends adults to Childline; a
voice Twilio does not have for a language (`Polly.Gwenyth`, `cy-CY`) makes Twilio refuse the <Say> and
the caller hears nothing; English pasted into `cy:` is read by the Welsh voice as nonsense.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import phonenumbers
import yaml

from router.inspect.validation.languages import text_fields
from router.inspect.validation.locate import ERROR, WARNING, Locator
from router.definition.flowfile import Problem
from router.definition.model import Flows

VOICES_FILE = Path(__file__).resolve().parents[2] / "data" / "twilio_voices.yaml"


# ------------------------------------------------------------------ phone numbers
def _longest_for_type(parsed: phonenumbers.PhoneNumber) -> int | None:
    """The usual (longest) length of a national number of this type in its region, e.g. 10 for UK freephone."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(phonenumbers.region_code_for_number(parsed) or "")
    kind = phonenumbers.number_type(parsed)
    desc = {phonenumbers.PhoneNumberType.TOLL_FREE: metadata.toll_free,
            phonenumbers.PhoneNumberType.FIXED_LINE: metadata.fixed_line,
            phonenumbers.PhoneNumberType.MOBILE: metadata.mobile,
            phonenumbers.PhoneNumberType.UAN: metadata.uan,
            phonenumbers.PhoneNumberType.VOIP: metadata.voip}.get(kind) if metadata else None
    lengths = list(desc.possible_length) if desc is not None and desc.possible_length else []
    return max(lengths) if lengths else None


def check_numbers(flows: Flows, loc: Locator, base: Flows | None = None) -> list[Problem]:
    """No letters; the usual length for the number's type (unless `short_number: true` says it really is
    short); one number per service. A number shared by two services is reported at the one whose number
    changed from `base` (the flows live now): the line the operator edited."""
    problems: list[Problem] = []
    owners: dict[str, list[str]] = {}
    for sid, service in flows.services.items():
        path = ("services", sid, "number")
        letters = sorted(set(re.findall(r"[A-Za-z]", service.number)))
        if letters:
            problems.append(loc.problem(
                "services.yaml", path, f"{service.number!r} has the letter{'s' * (len(letters) > 1)} "
                f"{', '.join(letters)} in it: callers would hear it and texters read it as written",
                hint="write digits only, e.g. 0800 999 5428 (a letter O where a zero belongs is easy to miss)"))
            continue
        parsed = phonenumbers.parse(service.number, "GB")
        digits = len(phonenumbers.national_significant_number(parsed)) + 1  # with the leading 0
        usual = _longest_for_type(parsed)
        if usual is not None and digits - 1 < usual and not service.short_number:
            problems.append(loc.problem(
                "services.yaml", path, f"{service.number!r} has {digits} digits, but numbers of this kind usually "
                f"have {usual + 1}: check that no digit is missing against {service.source}",
                hint="if the service really publishes this shorter number (as Childline's 0800 1111), add "
                     "`short_number: true` to the service"))
        owners.setdefault(service.e164, []).append(sid)
    for e164, sids in owners.items():
        if len(sids) < 2:
            continue
        edited = [sid for sid in sids if base is None or sid not in base.services
                  or base.services[sid].e164 != e164] or sids[1:]
        for sid in edited:
            others = ", ".join(other for other in sids if other != sid)
            problems.append(loc.problem(
                "services.yaml", ("services", sid, "number"),
                f"{flows.services[sid].number!r} is also the number of {others}: callers choosing {sid} would be "
                f"put through to {others}", hint=f"copy {sid}'s own number from {flows.services[sid].source}"))
    return problems


# ------------------------------------------------------------------ voices
@functools.lru_cache(maxsize=1)
def twilio_voices() -> tuple[str, dict[str, tuple[str, ...]]]:
    """(source, language -> voices) from the one data file, router/data/twilio_voices.yaml."""
    data = yaml.safe_load(VOICES_FILE.read_text(encoding="utf-8"))
    return data["source"], {lang: tuple(voices) for lang, voices in data["voices"].items()}


def check_voices(flows: Flows, loc: Locator) -> list[Problem]:
    """Each language's voice is one Twilio offers for that voice language, and speaks that language."""
    source, offered = twilio_voices()
    problems = []
    for lang, voice in flows.config.voices.items():
        path = ("voices", lang)
        if voice.language not in offered:
            near = [code for code in offered if code.split("-")[0] == voice.language.split("-")[0]]
            problems.append(loc.problem(
                "config.yaml", path + ("language",), f"{voice.language!r} is not a language Twilio's voices speak "
                f"(router/data/twilio_voices.yaml, from {source}): Twilio would refuse to say anything",
                hint=f"use {' or '.join(near)}" if near else "use one of " + ", ".join(sorted(offered))))
            continue
        if voice.voice not in offered[voice.language]:
            problems.append(loc.problem(
                "config.yaml", path + ("voice",), f"{voice.voice!r} is not a voice Twilio offers for "
                f"{voice.language} (router/data/twilio_voices.yaml, from {source}): Twilio would refuse to say "
                "anything", hint=f"use {' or '.join(offered[voice.language])}"))
        if voice.language.split("-")[0] != lang:
            problems.append(loc.problem(
                "config.yaml", path + ("language",), f"the {lang} wording would be read by a {voice.language} "
                f"voice, which does not speak {lang}", hint=f"choose a voice whose language starts with {lang}-"))
    return problems


# ------------------------------------------------------------------ Welsh that is English
ENGLISH_WORDS = frozenset(
    "the and you your are for please press with this that not we our call if it will have "
    "to of what when who there they been would could should about after before help line open closed".split())
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_PLACEHOLDER = re.compile(r"\{[^}]*\}")


def looks_english(text: str) -> bool:
    """True when most of a text's words are common English words Welsh does not use."""
    words = [w.lower() for w in _WORD.findall(_PLACEHOLDER.sub(" ", text))]
    english = sum(w in ENGLISH_WORDS for w in words)
    return english >= 3 and english * 3 >= len(words)


def check_welsh_is_welsh(flows: Flows, loc: Locator) -> list[Problem]:
    """A phrase, label or prompt in a language other than English that is English, or the English text
    unchanged: the caller would hear English read by, say, the Welsh voice."""
    problems = []
    default = flows.config.default_language
    for file, path, texts in _texts(flows):
        english = (texts.get(default) or "").strip()
        for lang, text in texts.items():
            if lang == default or not text or not text.strip():
                continue
            words = _WORD.findall(_PLACEHOLDER.sub(" ", text))
            if len(words) >= 3 and text.strip() == english:
                problems.append(loc.problem(file, path + (lang,), f"the {lang} text is the English text unchanged",
                                            hint=f"write it in {lang}; a missing {lang} text is better than English "
                                                 "(the router then says the English in the English voice)"))
            elif looks_english(text):
                problems.append(loc.problem(file, path + (lang,), f"the {lang} text looks like English: {text[:60]!r}",
                                            hint=f"paste the {lang} wording here; the {lang} voice cannot read English"))
    return problems


def _texts(flows: Flows):
    """Every wording but service names (real names are not translated: docs/operators.md)."""
    for file, path, texts, _severity in text_fields(flows):
        if path[-1] != "name":
            yield file, path, texts


__all__ = ["ERROR", "WARNING", "check_numbers", "check_voices", "check_welsh_is_welsh", "looks_english",
           "twilio_voices"]
