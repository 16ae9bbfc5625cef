"""Recognise "stop texting me", however it is typed: the one place that decides what a stop is.

Why a module of its own: a stop that is missed leaves a text pending for a phone someone else may
read, and a stop that is imagined ("he won't stop", "I want to end it") answers a person in crisis with
"Cancelled" instead of the 999 advice and the menu. Both mistakes matter, so the rule is written once,
tested on its own, and used by every path that reads a text.

What was typed is first *folded*: Unicode NFKC (fullwidth ＳＴＯＰ -> STOP), accents dropped (Welsh
circumflexes included), zero-width and other format characters, emoji and symbols removed, apostrophes
dropped ("don't" -> DONT), other punctuation read as a space, upper case, words split on spaces.

A text is a stop when it is short (at most MAX_WORDS words) and either
- it holds a stop word (Twilio's: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT, REVOKE, and the
  Welsh ones below) and every other word is a polite or texting word ("please", "texting", "me", ...):
  `STOP please`, `stop texting me`, `Stop?`, `STOP🙏`; but not `he won't stop` or `end it all`;
- or it is a plain request not to be texted: a "don't"/"no more" word and a texting word, with nothing
  else but polite or texting words: `don't text me`, `no more texts please`, `peidiwch a thecstio`.

Issue 19 (stop however it is really typed) widens this, because a stop missed leaves a text pending for a
phone someone else may now hold, while a false stop is answered with "we will not text this phone" AND
the 999 advice (router/engine/__init__.py `stopped`), never with silence:
- typing slips are read as STOP: `S T O P`, `stopp`, `Sotp`, `opt out` / `Opt-out`;
- a message that *begins* with STOP (STOPALL, OPTOUT, UNSUBSCRIBE, REVOKE, STOPIO) is a stop, whatever
  follows ("stop x", "stop he's here", "STOP. Wrong number"), unless it names harm ("stop hitting me")
  or a person ("stop them");
- "remove me", "delete my number", "no thanks", "dim diolch", "not safe" are stops;
- times and "this number" may stand beside a stop: "Cancel the 9am text", "Dont text me tomorrow".

The Welsh words are a first attempt and have NOT been reviewed by a Welsh speaker (marked below);
operators should have them checked, as they should every Welsh phrase.
"""
from __future__ import annotations

import re
import unicodedata

MAX_WORDS = 8

# Twilio's default opt-out keywords (its Advanced Opt-Out documentation; OPTOUT and REVOKE were added
# in 2025). Twilio itself acts on these only when one is the whole message.
TWILIO_STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
# UNREVIEWED Welsh: stopio (stop), diwedd (end), canslo (cancel), dad-danysgrifio (unsubscribe, folded
# without its hyphen), peidiwch (don't: as a one-word reply to a text, a stop).
WELSH_STOP_WORDS = frozenset({"STOPIO", "DIWEDD", "CANSLO", "DADDANYSGRIFIO", "DANYSGRIFIO", "PEIDIWCH"})
STOP_WORDS = TWILIO_STOP_WORDS | WELSH_STOP_WORDS

# "don't", "do not", "no more", "never": a request not to be texted when a texting word is with it
# (UNREVIEWED Welsh: peidiwch, paid (don't), na/nac, dim (no)).
NEGATIONS = frozenset({"DONT", "NOT", "NO", "NEVER", "NA", "NAC", "PEIDIWCH", "PAID", "DIM"})
# Words that only go with a no-word: "do not", "no more", "not again", "dim rhagor o".
NEGATION_COMPANIONS = frozenset({"DO", "MORE", "ANYMORE", "AGAIN", "EVER", "RHAGOR", "MWY", "O", "DAD"})
TEXTING_WORDS = frozenset({"TEXT", "TEXTS", "TEXTING", "TXT", "TXTS", "TXTING", "TEXTED", "SMS",
                           "MESSAGE", "MESSAGES", "MESSAGING", "MSG", "MSGS", "CONTACT", "CONTACTING",
                           "SEND", "SENDING", "REPLY", "REPLIES", "REMINDER", "REMINDERS",
                           # UNREVIEWED Welsh: tecstio (and its mutations), neges(euon), anfon
                           "TECSTIO", "THECSTIO", "DECSTIO", "NECSTIO", "NEGES", "NEGESEUON", "ANFON",
                           "HANFON", "NGHYSYLLTU", "CYSYLLTU"})
# Words that may stand beside a stop word without changing what it means.
POLITE_WORDS = frozenset({"PLEASE", "PLS", "PLZ", "PLEASEE", "NOW", "IT", "THIS", "THAT", "THESE", "THE",
                          "ME", "MY", "TO", "ANY", "ALL", "AT", "OK", "OKAY", "THANKS", "THANK", "YOU",
                          "THX", "TA", "U", "I", "WANT", "WOULD", "LIKE", "JUST", "SO", "AND", "FROM",
                          "THEM", "US",
                          # UNREVIEWED Welsh: os gwelwch yn dda (please), plis, diolch, nawr, a/ar, fi
                          "OS", "GWELWCH", "YN", "DDA", "PLIS", "DIOLCH", "NAWR", "A", "AR", "FI",
                          "MI", "NI", "ATAF", "YMA"})
# Beside a stop word with no word about texts: "stop it", "please stop me" and no more. "I want it all
# to stop", "I just want it to stop", "stop them" are someone in crisis, not a request about texts.
LONE_STOP_WORDS = frozenset({"IT", "ME", "FI", "DAD", "ALL", "THAT"})  # DAD: "dad-danysgrifio" (unsubscribe)
# ... except beside END, QUIT and DIWEDD: "end it all", "I want to end it" are not about texts.
STRICT_STOP_WORDS = frozenset({"END", "QUIT", "DIWEDD"})
STRICT_POLITE = frozenset({"PLEASE", "PLS", "PLZ", "NOW", "OK", "OKAY", "THANKS", "THX", "PLIS",
                           "DIOLCH", "NAWR"})
# Words about when or which text: "Cancel the 9am text", "Dont text me in an hour", "tomorrow".
TIME_WORDS = frozenset({"IN", "AN", "A", "HOUR", "HOURS", "TODAY", "TOMORROW", "TONIGHT", "LATER", "MORNING",
                        "AM", "PM", "NUMBER", "PHONE", "WRONG", "ANYMORE", "AGAIN", "YFORY", "HEDDIW"})
_TIME_TOKEN = re.compile(r"\d{1,2}(AM|PM|YB|YH)?|\d{1,2}\d{2}")
# A message that begins with one of these is a stop, whatever follows (within MAX_WORDS) ...
LEADING_STOP_WORDS = frozenset({"STOP", "STOPALL", "OPTOUT", "UNSUBSCRIBE", "REVOKE", "STOPIO"})
# ... unless it names harm or a person: then it is someone describing abuse ("stop hitting me").
HARM_WORDS = frozenset({"HIT", "HITS", "HITTING", "HURT", "HURTS", "HURTING", "KICK", "KICKING", "PUNCH",
                        "PUNCHING", "CHOKE", "CHOKING", "STRANGLE", "STRANGLING", "BEAT", "BEATING", "KILL",
                        "KILLING", "RAPE", "RAPING", "ABUSE", "ABUSING", "THREATENING", "SHOUTING", "SCREAMING",
                        "HARASSING", "STALKING", "FOLLOWING", "TOUCHING", "HITIO", "BRIFO"})
PEOPLE_AFTER_STOP = frozenset({"THEM", "HIM", "HER", "US", "HE", "SHE", "THEY"})
# Whole phrases that ask us to stop (after folding): "remove me", "no thanks", "not safe".
REMOVE_WORDS = frozenset({"REMOVE", "DELETE", "ERASE"})
REMOVE_COMPANIONS = frozenset({"ME", "MY", "NUMBER", "THIS", "PLEASE", "FROM", "LIST", "YOUR", "DETAILS",
                               "PHONE", "NOW", "PLS", "PLZ"})
STOP_PHRASES = (("NO", "THANKS"), ("NO", "THANK", "YOU"), ("NO", "THANX"), ("NO", "THX"), ("DIM", "DIOLCH"),
                ("NOT", "SAFE"), ("ISNT", "SAFE"), ("UNSAFE",), ("NOT", "SAFE", "NOW"))
WELSH_WORDS = frozenset({"STOPIO", "DIWEDD", "CANSLO", "DADDANYSGRIFIO", "DANYSGRIFIO", "PEIDIWCH",
                         "TECSTIO", "THECSTIO", "DECSTIO", "NEGES", "NEGESEUON", "ANFON", "GWELWCH",
                         "DDA", "PLIS", "DIOLCH", "NAWR", "RHAGOR"})

# Unicode categories dropped outright: format (zero-width space, joiners, BOM), controls, marks left
# after decomposition (accents, emoji variation selectors), symbols (emoji, arrows), unassigned, private.
_DROPPED = frozenset({"Cf", "Cc", "Mn", "Me", "Sk", "So", "Co", "Cn", "Cs"})
_APOSTROPHES = frozenset("'\u2019\u2018\u02bc\u0060\u00b4")


def fold(text: str | None) -> str:
    """What was typed, reduced to upper-case words separated by single spaces (see the module doc)."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text or ""))
    out = []
    for char in text:
        if char in _APOSTROPHES:
            continue
        category = unicodedata.category(char)
        if category in _DROPPED:
            continue
        out.append(" " if category[0] in "PZ" or char.isspace() else char)
    return " ".join("".join(out).upper().split())


def words(text: str | None) -> list[str]:
    return fold(text).split()


def _mended(found: list[str]) -> list[str]:
    """Typing slips read as meant: 'S T O P' -> STOP, 'OPT OUT' -> OPTOUT, 'STOPP' / 'SOTP' -> STOP."""
    if len(found) >= 3 and all(len(w) == 1 and w.isalpha() for w in found):
        found = ["".join(found)]
    joined: list[str] = []
    for word in found:
        if joined and joined[-1] in {"OPT", "UN", "STOP"} and joined[-1] + word in STOP_WORDS:
            joined[-1] += word
        else:
            joined.append(word)
    return [_mend_word(w) for w in joined]


def _mend_word(word: str) -> str:
    if word in STOP_WORDS or not 4 <= len(word) <= 6 or not word.isalpha():
        return word
    collapsed = re.sub(r"(.)\1+", r"\1", word)
    if collapsed == "STOP":
        return "STOP"
    swaps = {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)}
    return "STOP" if "STOP" in swaps else word


def _is_time(word: str) -> bool:
    return word in TIME_WORDS or bool(_TIME_TOKEN.fullmatch(word))


def is_stop(text: str | None) -> bool:
    """True when the text asks us to stop texting (see the module doc for the rule and its reasons)."""
    found = _mended(words(text))
    if not found or len(found) > MAX_WORDS:
        return False
    if any(w in HARM_WORDS for w in found):
        return False  # someone describing abuse: "stop hitting me", "Stop it he is hurting me"
    if found[0] in LEADING_STOP_WORDS and (len(found) == 1 or found[1] not in PEOPLE_AFTER_STOP):
        return True  # "stop x", "stop he's here", "STOP. Wrong number"
    if _has_phrase(found) or _asks_to_be_removed(found):
        return True
    if any(a in NEGATIONS and b in STOP_WORDS for a, b in zip(found, found[1:])):
        return False  # "don't stop", "peidiwch stopio": the opposite
    stops = [w for w in found if w in STOP_WORDS]
    others = [w for w in found if w not in STOP_WORDS]
    if stops:
        strict = any(w in STRICT_STOP_WORDS for w in stops) and not any(
            w in STOP_WORDS - STRICT_STOP_WORDS for w in stops)
        if strict:
            allowed = STRICT_POLITE | TEXTING_WORDS
        elif any(w in TEXTING_WORDS for w in others):  # "please stop sending me these texts"
            allowed = POLITE_WORDS | TEXTING_WORDS | NEGATIONS | NEGATION_COMPANIONS
        else:  # no word about texts: "stop it", "please stop", never "I want it all to stop"
            allowed = STRICT_POLITE | LONE_STOP_WORDS
        about_texts = not strict and any(w in TEXTING_WORDS for w in others)
        if all(w in allowed or (about_texts and _is_time(w)) for w in others):
            return True
    return _asks_not_to_be_texted(found)


def _has_phrase(found: list[str]) -> bool:
    """'no thanks', 'dim diolch', 'not safe' anywhere in a short message."""
    for phrase in STOP_PHRASES:
        n = len(phrase)
        if any(tuple(found[i:i + n]) == phrase for i in range(len(found) - n + 1)):
            return True
    return False


def _asks_to_be_removed(found: list[str]) -> bool:
    """'remove me', 'delete my number', 'please remove this number from your list'."""
    return found[0] in REMOVE_WORDS | {"PLEASE", "PLS"} and any(w in REMOVE_WORDS for w in found) and \
        all(w in REMOVE_WORDS | REMOVE_COMPANIONS for w in found) and len(found) >= 2


def _asks_not_to_be_texted(found: list[str]) -> bool:
    """'don't text me', 'no more texts please', 'peidiwch a thecstio': a no-word and a texting word,
    and nothing that is neither polite nor about texts."""
    has_negation = any(w in NEGATIONS for w in found)
    has_texting = any(w in TEXTING_WORDS for w in found)
    allowed = NEGATIONS | NEGATION_COMPANIONS | TEXTING_WORDS | POLITE_WORDS | STOP_WORDS
    return has_negation and has_texting and all(w in allowed or _is_time(w) for w in found)


def language_of(text: str | None) -> str | None:
    """'cy' when the text has a Welsh word we know, else None (no guess): the stop reply's language
    when nothing else says which the texter uses."""
    return "cy" if any(w in WELSH_WORDS for w in words(text)) else None
