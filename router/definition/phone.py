"""Every phone number goes through phonenumbers here: validate, normalise, classify, read aloud.

Why one module: a number a caller hears, a number we dial and a number we text must all agree, and the
rules about who may get a text (a mobile, never a withheld caller) must live in exactly one place.
"""
from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType

REGION = "GB"

# What Twilio puts in From for a withheld, restricted or unknown caller (its documented placeholders:
# the letters of ANONYMOUS, RESTRICTED, UNKNOWN, BLOCKED and UNAVAILABLE typed on a keypad).
WITHHELD = frozenset(
    {"", "anonymous", "restricted", "unknown", "private", "blocked", "unavailable",
     "+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253",
     "266696687", "7378742833", "2562533", "8656696", "86282452253"}
)

_COSTLY = {PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
           PhoneNumberType.SHARED_COST: "a shared-cost number that charges callers"}


def check_service_number(text: str) -> None:
    """Raise ValueError unless `text` is a valid UK number that is free or ordinary-rate to call."""
    try:
        parsed = phonenumbers.parse(str(text), REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{text!r} is not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{text!r} is not a valid phone number")
    if phonenumbers.region_code_for_number(parsed) != REGION:
        raise ValueError(f"{text!r} is not a UK number")
    kind = phonenumbers.number_type(parsed)
    if kind in _COSTLY:
        raise ValueError(f"{text!r} is {_COSTLY[kind]}; helplines must be free to call")


def to_e164(text: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(str(text), REGION), phonenumbers.PhoneNumberFormat.E164)


def is_withheld(raw: str | None) -> bool:
    return (raw or "").strip().lower() in WITHHELD


# Whose mobiles may be offered a text unless configured otherwise (FOLLOWUP_COUNTRIES): the UK's. A text
# abroad costs international rates, or is refused (Twilio error 21408) outside the account's geo
# permissions; Jersey, Guernsey and the Isle of Man are regions of their own (JE, GG, IM).
TEXTABLE_REGIONS = frozenset({REGION})


def _valid(raw: str | None) -> phonenumbers.PhoneNumber | None:
    """`raw` parsed (as a UK number unless it says otherwise) if it is a valid, not withheld number."""
    if is_withheld(raw):
        return None
    try:
        parsed = phonenumbers.parse(str(raw), REGION)
    except phonenumbers.NumberParseException:
        return None
    return parsed if phonenumbers.is_valid_number(parsed) else None


def _textable(raw: str | None, regions: frozenset[str] = TEXTABLE_REGIONS) -> phonenumbers.PhoneNumber | None:
    parsed = _valid(raw)
    if (parsed is not None and phonenumbers.number_type(parsed) == PhoneNumberType.MOBILE
            and phonenumbers.region_code_for_number(parsed) in regions):
        return parsed
    return None


def can_receive_texts(raw: str | None, regions: frozenset[str] = TEXTABLE_REGIONS) -> bool:
    """True only for a valid mobile number of an allowed region (the UK's by default) that is not
    withheld: the only kind we may ever offer a text."""
    return _textable(raw, regions) is not None


def textable_number(raw: str | None, regions: frozenset[str] = TEXTABLE_REGIONS) -> str | None:
    """The E.164 form of `raw` if it can receive texts (see can_receive_texts), else None: the check and
    normalise_sender's answer from one parse (a parse costs ~0.1 ms)."""
    parsed = _textable(raw, regions)
    return None if parsed is None else phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_landline(raw: str | None) -> bool:
    """A valid UK fixed-line number (a text from it may be read aloud to the household by the carrier)."""
    parsed = _valid(raw)
    return parsed is not None and phonenumbers.region_code_for_number(parsed) == REGION and \
        phonenumbers.number_type(parsed) == PhoneNumberType.FIXED_LINE


class TextableLater:
    """`can_receive_texts(raw)`, worked out only if something asks (most steps of a call never do).
    enabled=False: never (no sender for follow-ups is configured: router/web/followups.py)."""

    __slots__ = ("_raw", "_value", "_regions")

    def __init__(self, raw: str | None, regions: frozenset[str] = TEXTABLE_REGIONS, enabled: bool = True):
        self._raw, self._value, self._regions = raw, (None if enabled else False), regions

    def __bool__(self) -> bool:
        if self._value is None:
            self._value = can_receive_texts(self._raw, self._regions)
        return self._value

    def __eq__(self, other: object) -> bool:
        return bool(self) == bool(other)

    def __hash__(self) -> int:
        return hash(bool(self))


def normalise_sender(raw: str | None) -> str | None:
    """E.164 for a sender we could text back, else None (withheld, malformed)."""
    parsed = _valid(raw)
    return None if parsed is None else phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_E164 = re.compile(r"\+[1-9][0-9]{5,14}")


def sender_key(raw: str | None) -> str:
    """The one form of a texter's number that their conversation is filed under.

    Twilio gives a texter's number in E.164, and for a number in E.164 phonenumbers' normal form is
    that same string (tests/test_phone_keys.py checks every region's example numbers), so only other
    forms are parsed: a parse costs ~0.1 ms, on every text. What is not a number is kept as sent."""
    raw = raw or ""
    if _E164.fullmatch(raw):
        return raw
    return normalise_sender(raw) or raw


DIGIT_WORDS = {
    "en": ["oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    "cy": ["dim", "un", "dau", "tri", "pedwar", "pump", "chwech", "saith", "wyth", "naw"],
}
THOUSAND = {"en": "thousand", "cy": "mil"}
HUNDRED = {"en": "hundred", "cy": "cant"}


def _speak_group(group: str, lang: str) -> str:
    words = DIGIT_WORDS.get(lang, DIGIT_WORDS["en"])
    if lang == "en" and len(group) == 4 and group[0] != "0" and group[1:] == "000":
        return f"{words[int(group[0])]} {THOUSAND[lang]}"  # 2000 -> "two thousand"
    if lang == "en" and len(group) == 4 and group[0] == "0" and group[1] != "0" and group[2:] == "00":
        return f"oh {words[int(group[1])]} {HUNDRED[lang]}"  # 0800 -> "oh eight hundred"
    return " ".join(words[int(d)] for d in group)


def speak_number(display: str, lang: str = "en") -> str:
    """Read a number digit by digit in the groups it is published in, never as one big number.

    "0808 2000 247" -> "oh eight oh eight, two thousand, two four seven". The commas make a
    text-to-speech voice pause between groups, which is how people write a number down.
    """
    groups = [g for g in "".join(c if c.isdigit() else " " for c in display).split() if g]
    return ", ".join(_speak_group(group, lang) for group in groups)
