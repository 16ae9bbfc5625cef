"""Recognise words of crisis in a text ("I want to end it all", "kill myself", "suicidal"): the one place
that decides it, so every path that reads a text answers them alike.

Why: someone who texts that they want to end their life must get a crisis line (Samaritans) and the 999
advice, not "Reply with a number from the list" or a stop confirmation (issue 19 item 11). A false
reading costs little (the answer still carries the menu's way back and the 999 advice); a miss costs a
life, so the list is generous. Welsh phrases are a first attempt, UNREVIEWED by a Welsh speaker.
"""
from __future__ import annotations

from router.engine.stopwords import words

# Whole-word sequences, after folding (router/stopwords.fold): upper case, no apostrophes.
CRISIS_PHRASES = (
    ("END", "IT", "ALL"), ("END", "IT"), ("END", "MY", "LIFE"), ("KILL", "MYSELF"), ("KILLING", "MYSELF"),
    ("KMS",), ("SUICIDE",), ("SUICIDAL",), ("WANT", "TO", "DIE"), ("WANNA", "DIE"), ("BETTER", "OFF", "DEAD"),
    ("TAKE", "MY", "OWN", "LIFE"), ("TAKE", "MY", "LIFE"), ("DONT", "WANT", "TO", "LIVE"),
    ("DONT", "WANT", "TO", "BE", "HERE"), ("NO", "REASON", "TO", "LIVE"), ("HURT", "MYSELF"),
    ("HARM", "MYSELF"), ("SELF", "HARM"), ("OVERDOSE",),
    # UNREVIEWED Welsh: lladd fy hun (kill myself), hunanladdiad (suicide), eisiau marw (want to die),
    # diweddu fy mywyd (end my life)
    ("LLADD", "FY", "HUN"), ("HUNANLADDIAD",), ("EISIAU", "MARW"), ("ISIO", "MARW"), ("DIWEDDU", "FY", "MYWYD"),
)


def is_crisis(text: str | None) -> bool:
    """True when the text has words of crisis (see CRISIS_PHRASES)."""
    found = words(text)
    for phrase in CRISIS_PHRASES:
        n = len(phrase)
        if any(tuple(found[i:i + n]) == phrase for i in range(len(found) - n + 1)):
            return True
    return False
