"""The text channel's rules: what a text says (a choice however typed, a stop, words of crisis, a call for
help, a language), and which answer it gets in each situation. Pure: the Flask blueprint
(router/web/sms.py) gathers the situation (where the texter is, whether Redis answered, the limits, who
the text was sent to) and sends the answer; the simulator and the inspections read the same words here.

A text can reach a phone someone else holds, and a sender's number can be faked, so (issues 12, 18):
no answer depends on what is stored for the sender's number; a stop however typed gets one line and the
999 advice, never the menu; a text to the follow-up sender gets only the discreet answer of an automated
number (55 / 999 still get the police advice); words of crisis always get the Samaritans.
"""
from __future__ import annotations

import re
from dataclasses import replace
from functools import cached_property

from router.definition.model import Flows, MenuNode
from router.engine import crisis, stopwords
from router.engine import texts as textsteps
from router.engine.context import Context, Step
from router.engine.inputs import Text
from router.engine.keypad import POLICE_TEXTS, SMS_FOLLOWUP_KEY
from router.engine.presenting import police, present, start
from router.engine.walking import press

MENU_WORDS = frozenset({"MENU", "HELP", "0", "DEWISLEN", "HELPU", "CYMORTH"})
# Words of someone asking for help now: answered (the police advice) past every other limit (issue 19).
HELP_WORDS = frozenset({"HELP", "HELPU", "CYMORTH", "SOS", "999", "55", "DANGER", "PERYGL"})
LANGUAGE_WORDS = {"CYMRAEG": "cy", "WELSH": "cy", "ENGLISH": "en", "SAESNEG": "en"}


# A choice as people type it (issue 19): "one", "option 1", "1 please", "number 1", "first one", "1.".
NUMBER_WORDS = {
    "ZERO": "0", "ONE": "1", "TWO": "2", "THREE": "3", "FOUR": "4", "FIVE": "5", "SIX": "6", "SEVEN": "7",
    "EIGHT": "8", "NINE": "9", "FIRST": "1", "SECOND": "2", "THIRD": "3", "FOURTH": "4", "FIFTH": "5",
    "SIXTH": "6", "SEVENTH": "7", "EIGHTH": "8", "NINTH": "9", "1ST": "1", "2ND": "2", "3RD": "3", "4TH": "4",
    "5TH": "5", "6TH": "6", "7TH": "7", "8TH": "8", "9TH": "9",
    # UNREVIEWED Welsh numbers
    "UN": "1", "DAU": "2", "DWY": "2", "TRI": "3", "TAIR": "3", "PEDWAR": "4", "PEDAIR": "4", "PUMP": "5",
    "CHWECH": "6", "SAITH": "7", "WYTH": "8", "NAW": "9", "CYNTAF": "1",
}
ORDINALS = frozenset({"FIRST", "SECOND", "THIRD", "FOURTH", "FIFTH", "SIXTH", "SEVENTH", "EIGHTH", "NINTH",
                      "CYNTAF"})
# Not "NO": "no 1" at "When is it safe to text you?" must never read as a choice that books a text.
FILLER_WORDS = frozenset({"OPTION", "OPTIONS", "NUMBER", "NUM", "NR", "PLEASE", "PLS", "PLZ", "THE",
                          "CHOICE", "PRESS", "REPLY", "IT", "IS", "ITS", "I", "WANT", "CHOOSE", "PICK", "THANKS",
                          "THX", "OK", "OPSIWN", "RHIF", "PLIS", "DIOLCH"})
# Yes / no where a question was asked (issue 19): "Reply 8 for this number by text later" takes a yes.
YES_WORDS = frozenset({"YES", "YEAH", "YEP", "YUP", "YA", "Y", "OK", "OKAY", "SURE", "IE", "OES", "GWNEWCH"})
NO_WORDS = frozenset({"NO", "NOPE", "NAH", "N", "NA", "NAC", "NADDO", "NAGE"})


def keyword(body: str) -> str:
    """Case-, space- and width-insensitive form of a reply: ' Stop ' -> 'STOP', '2.' -> '2', 'ＭＥＮＵ' ->
    'MENU' (folded as stop words are, stopwords.fold); a number however typed -> its digits ('option 1',
    'first one', 'one' -> '1'); '*' and '#' stay themselves."""
    found = stopwords.words(body)
    kept = [w for w in found if w not in FILLER_WORDS]
    ordinal = any(w in ORDINALS for w in kept)
    digits = [NUMBER_WORDS.get(w, w) for w in kept if not (ordinal and w == "ONE")]
    if digits and all(d.isdigit() for d in digits) and (len(digits) == 1 or all(len(d) == 1 for d in digits)):
        return "".join(digits)
    folded = "".join(found)
    if folded:
        return folded
    word = re.sub(r"\s+", "", body or "").upper()
    return word.rstrip(".!") or word


def is_key(word: str) -> bool:
    """A keypad-like reply ('3', '0', '*', or 55 / 999 for the police advice); anything else is free text."""
    return (len(word) == 1 and word in "0123456789*#") or word in POLICE_TEXTS


class Reading:
    """What one text says, each part read once and only when asked (a text is read on every request)."""

    def __init__(self, text: Text, *, opted_out: bool = False) -> None:
        self.body = text.body
        self.opted_out = opted_out  # Twilio's own opt-out (OptOutType=STOP) came with it

    @cached_property
    def word(self) -> str:
        return keyword(self.body)

    @cached_property
    def is_stop(self) -> bool:
        return self.opted_out or stopwords.is_stop(self.body)

    @cached_property
    def in_crisis(self) -> bool:
        return crisis.is_crisis(self.body)

    @property
    def wants_police(self) -> bool:
        """55 / 999, following the 999 advice."""
        return self.word in POLICE_TEXTS

    @cached_property
    def asks_for_help(self) -> bool:
        return bool(HELP_WORDS & set(stopwords.words(self.body)))

    @property
    def urgent(self) -> bool:
        """Never silent to these, past every limit (issue 19): a stop, crisis, 999 / 55, help."""
        return self.is_stop or self.in_crisis or self.wants_police or self.asks_for_help

    @cached_property
    def language(self) -> str | None:
        """The language a word we know in the text says (a Welsh stop word, 'Cymraeg'), if any."""
        return stopwords.language_of(self.body) if self.body else None


def decide(flows: Flows, reading: Reading, at: str | None, fresh: bool, ctx: Context) -> Step:
    """The Step for one inbound text to the helpline, given where the texter is in the menu (`at`, None
    for a first text; ctx.lang is already the texter's). A retried MessageSid (fresh=False) gets the
    answer of where the texter already is, and advances nothing."""
    word = reading.word
    if not fresh:
        return present(ctx, at) if at else start(ctx)
    if reading.wants_police:  # 55 / 999, following the 999 advice: always how to reach the police
        return police(ctx)
    if reading.in_crisis:
        return textsteps.crisis(ctx)
    if LANGUAGE_WORDS.get(word) in flows.config.languages:
        ctx = replace(ctx, lang=LANGUAGE_WORDS[word])
        return textsteps.first_reply(ctx) if at is None else start(ctx)
    if at is None:  # a first text, of any content: the advice, "these stay", the menu
        return textsteps.first_reply(ctx)
    if word in MENU_WORDS or reading.asks_for_help:
        return start(ctx)  # the 999 advice first, then the menu
    kind = at.partition(":")[0]
    if kind == "info" and word in YES_WORDS | NO_WORDS:
        word = SMS_FOLLOWUP_KEY if word in YES_WORDS else "0"
    elif kind == "when" and word in NO_WORDS:
        return textsteps.stopped(ctx)  # "When is it safe to text you?" "No": nothing is booked
    if not is_key(word):
        return textsteps.not_understood(ctx, at)
    return press(ctx, at, word)


def decide_stateless(flows: Flows, reading: Reading, ctx: Context) -> Step:
    """Redis is down: 55 / 999 and words of crisis are answered as ever; a top-level choice (a service,
    or 9 for Welsh) still works; anything else gets the menu."""
    word = reading.word
    if reading.wants_police:
        return police(ctx)
    if reading.in_crisis:
        return textsteps.crisis(ctx)
    if LANGUAGE_WORDS.get(word) in flows.config.languages:
        return start(replace(ctx, lang=LANGUAGE_WORDS[word]))
    node = flows.nodes[flows.start]
    if word not in MENU_WORDS and isinstance(node, MenuNode) and any(o.key == word for o in node.options):
        return press(ctx, flows.start, word)
    return start(ctx)


def decide_neutral(reading: Reading, cancelled: int | None, ctx: Context) -> Step:
    """A text to the follow-up sender: the answers of any automated number (issue 18), but words of crisis
    still get the Samaritans (the contract). Needs no Redis. `cancelled`: what a stop cancelled (None:
    Redis could not record it)."""
    if reading.is_stop:
        return textsteps.stopped(ctx, True, reading.in_crisis) if cancelled is not None else \
            textsteps.stop_not_recorded(ctx, True, reading.in_crisis)
    if reading.in_crisis:
        return textsteps.crisis_without_menu(ctx)
    if reading.wants_police:
        return textsteps.police_discreetly(ctx)
    return textsteps.discreet(ctx)


def decide_stop(reading: Reading, cancelled: int | None, ctx: Context) -> Step:
    """A stop to the helpline: one line true either way, never "cancelled" when Redis could not record it."""
    if cancelled is not None:
        return textsteps.stopped(ctx, in_crisis=reading.in_crisis)
    return textsteps.stop_not_recorded(ctx, in_crisis=reading.in_crisis)


def decide_landline(reading: Reading, ctx: Context) -> Step:
    """A text from a landline: may be read aloud to the household, so no menu and no way into one, at
    any level of the limits; in the language the text names, if it names one."""
    lang = LANGUAGE_WORDS.get(reading.word)
    if lang in ctx.flows.config.languages or reading.language:
        ctx = replace(ctx, lang=lang or reading.language or ctx.lang)
    if reading.wants_police:
        return textsteps.police_discreetly(ctx)
    return textsteps.crisis_without_menu(ctx) if reading.in_crisis else textsteps.landline(ctx)


def decide_advice_only(reading: Reading, ctx: Context) -> Step:
    """Past the sender's full replies: the 999 advice, or what an urgent text needs."""
    if reading.in_crisis:
        return textsteps.crisis(ctx)
    return police(ctx) if reading.urgent else textsteps.safety_only(ctx)


def texter_language(flows: Flows, conversation_lang: str | None, reading: Reading | None = None) -> str:
    """The language to answer in: a Welsh word we know in the text says Welsh for a stop (`reading`);
    else the conversation's (where the texter is in the menu, not anything about texts sent); else the
    default."""
    for lang in (reading.language if reading else None, conversation_lang):
        if lang and lang in flows.config.languages:
            return lang
    return flows.config.default_language
