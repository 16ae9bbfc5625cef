"""Message sizes and encodings: every text fits in two SMS segments and uses no character that forces
UCS-2 (70 characters a message instead of 160) when a plain one says the same.

Texts are rendered through the engine (rendering.py) and measured as a phone network counts them.
"""
from __future__ import annotations

import string
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

from router.inspect.validation.languages import text_fields
from router.inspect.validation.locate import ERROR, WARNING, Locator, lang_name
from router.inspect.validation.rendering import CLOCKS, VOICE_CLOCKS, Reply, followup_texts, sms_replies, tracing, voice_walk
from router.definition.flowfile import Path_, Problem
from router.definition.model import Flows

MAX_SMS_SEGMENTS = 2

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


def check_rendering(flows: Flows, loc: Locator, clocks: tuple[datetime, ...]) -> list[Problem]:
    """Render every text and every call step through the engine: sizes, encodings, and crashes."""
    problems: list[Problem] = []
    flows = tracing(flows)
    walker = voice_walk(flows, VOICE_CLOCKS if clocks == CLOCKS else clocks)
    where: tuple[str, str, datetime] | None = None
    try:
        for where in walker:  # noqa: B007 - kept after the loop: the place a failure happened
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
        for lang in flows.config.languages:
            sizes.add_phrase("sms_stopped", lang, flows.phrase("sms_stopped", lang), "the reply to STOP")
    except Exception as exc:  # noqa: BLE001
        problems.append(loc.problem("phrases.yaml", ("phrases",),
                                    f"the router fails while writing a text: {type(exc).__name__}: {exc}"))
    return problems + sizes.problems()


class SizeReport:
    """Collects text-size and encoding findings, one per place and language, keeping the worst case."""

    def __init__(self, flows: Flows, loc: Locator):
        self.flows, self.loc = flows, loc
        self.too_long: dict[tuple, tuple[SmsSize, Problem, str, str]] = {}  # ..., culprit phrase, describe
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

    def add_phrase(self, pid: str, lang: str, text: str, what: str) -> None:
        """A text made of one phrase alone (the reply to STOP)."""
        self._check(text, lang, "phrases.yaml", ("phrases", pid, lang), f"{what} ({lang_name(lang)})",
                    ((pid, text),))

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
        if actual.segments > MAX_SMS_SEGMENTS:
            key = (name, path, lang)
            if key not in self.too_long or actual.units > self.too_long[key][0].units:
                longest = sorted(parts, key=lambda part: -len(part[1]))[:3]
                shown = "; ".join(self._part(pid, part, lang) for pid, part in longest)
                if plain.segments > MAX_SMS_SEGMENTS:
                    reason = (f"{describe} is {actual.segments} text messages long ({actual.units} characters; "
                              f"{MAX_SMS_SEGMENTS} messages hold {actual.limit}). Its longest parts: {shown}")
                    hint = "shorten one of these parts"
                else:
                    letters = "".join(sorted({c for c in text if not is_gsm7(c)}))
                    reason = (f"{describe} is {actual.segments} text messages long because of {letters!r}: one "
                              f"such character makes every message of the text hold 70 characters instead of "
                              f"160. Its longest parts: {shown}")
                    hint = (f"spell {letters!r} without accents or special characters in this text "
                            f"(it would then be {plain.segments} messages), or shorten it")
                if name == "services.yaml":
                    hint += self._service_hint(path[1])
                culprit = longest[0][0] if longest and longest[0][0] not in ("", "sms_option", "voice_option") \
                    else ""
                self.too_long[key] = (actual, self.loc.problem(name, path, reason, hint=hint), culprit, describe)
        if actual.encoding == "UCS-2":
            for char in sorted({c for c in text if not is_gsm7(c)}):
                self._ucs2(char, text, lang, name, path, describe, actual)

    def _service_hint(self, sid: str) -> str:
        """A service's own words fill the longest texts too: its name and its hours can be shorter."""
        service = self.flows.services.get(sid)
        if service is None:
            return ""
        hours = "" if service.open_24_hours else \
            f" or fewer hour ranges (services.yaml:{self.loc.line('services.yaml', ('services', sid, 'hours'))})"
        return f"; or a shorter said_as/name for {sid} (services.yaml:{self.loc.line('services.yaml', ('services', sid, 'name'))}){hours}"

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
        """One problem per place, except where one phrase makes the texts of several places too long:
        then one problem at that phrase, which is what the operator edited and must shorten."""
        groups: dict[tuple[str, str], list[tuple[SmsSize, Problem, str, str]]] = {}
        for (_name, _path, lang), entry in self.too_long.items():
            if entry[2]:
                groups.setdefault((entry[2], lang), []).append(entry)
        grouped = {(pid, lang) for (pid, lang), entries in groups.items() if len(entries) > 1}
        found = [entry[1] for (_n, _p, lang), entry in self.too_long.items() if (entry[2], lang) not in grouped]
        for pid, lang in sorted(grouped):
            entries = groups[(pid, lang)]
            worst = max(entries, key=lambda entry: entry[0].units)
            size = worst[0]
            found.append(self.loc.problem(
                "phrases.yaml", ("phrases", pid, lang),
                f"this phrase makes {len(entries)} text replies longer than {MAX_SMS_SEGMENTS} messages; the "
                f"longest is {worst[3]}: {size.segments} messages, {size.units} characters ({MAX_SMS_SEGMENTS} "
                f"messages hold {size.limit})",
                hint=f"shorten this phrase by at least {size.units - size.limit} characters"))
        return found + [p for _, p in self.chars.values()]


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
