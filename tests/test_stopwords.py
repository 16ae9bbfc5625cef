"""What counts as "stop texting me" (router/engine/stopwords.py): every form the issue found, and the texts
that must never be taken for one (a person describing abuse, or in crisis)."""
from __future__ import annotations

import pytest

from router.engine import stopwords

STOP_FORMS = [
    "STOP", "stop", " Stop ", "Stop?", "STOP please", "please stop", "stop texting me", "STOP🙏", "STOP 🙏🏽",
    "ＳＴＯＰ", "STOP\u200b", "\u200bS\u200dTOP", "STOP!!!", "OPTOUT", "REVOKE", "STOPALL", "UNSUBSCRIBE",
    "CANCEL", "cancel the text", "END", "QUIT", "end.", "don't text me", "Don\u2019t text me", "do not text me",
    "no more texts please", "never text me again", "stop messaging me", "Stop it",
    # Welsh (UNREVIEWED words, see router/engine/stopwords.py)
    "STOPIO", "diwedd", "Canslo", "peidiwch", "Peidiwch â thecstio", "dim rhagor o negeseuon",
    "dad-danysgrifio",
    # issue 19: as people really type it (each left a text pending before)
    "stop x", "Dont text me in an hour", "stop he's here", "Please stop texting this number", "STOP. Wrong number",
    "no thanks stop", "Opt-out", "stop all", "opt out", "remove me", "delete my number", "Cancel that",
    "Cancel the 9am text", "Dont text me tomorrow", "Not safe", "stop its not safe", "S T O P", "stopp", "Sotp",
    "Dim diolch",
]

NOT_STOPS = [
    "I want them to stop", "I want it all to stop", "I just want it to stop", "Stop them", "please just stop",
    "he hit me again what do i do", "help me please", "he won't stop", "he wont stop hitting me",
    "I want to end it", "end it all", "stop hitting me", "Stop it he is hurting me", "more texts please",
    "do text me", "no", "Dad", "cancel my appointment", "Who is this?", "1", "MENU", "", "   ", "🙏",
    "when does it end", "I need to quit my job and leave", "don't stop", "please don't stop",
    "peidiwch stopio",
]


@pytest.mark.parametrize("text", STOP_FORMS)
def test_every_way_of_typing_stop_is_a_stop(text):
    assert stopwords.is_stop(text)


@pytest.mark.parametrize("text", NOT_STOPS)
def test_a_person_describing_abuse_or_crisis_is_not_taken_for_a_stop(text):
    assert not stopwords.is_stop(text)


def test_a_long_message_with_a_stop_word_is_not_a_stop():
    assert not stopwords.is_stop("please please please please stop stop stop stop texting")


@pytest.mark.parametrize("text, folded", [
    ("ＳＴＯＰ", "STOP"), ("S\u200bTOP", "STOP"), ("STOP🙏", "STOP"), ("don't", "DONT"),
    ("Peidiwch â", "PEIDIWCH A"), ("stop,texting", "STOP TEXTING"), ("e\u0301nd", "END"),
])
def test_fold_normalises_width_invisible_characters_emoji_accents_and_punctuation(text, folded):
    assert stopwords.fold(text) == folded


@pytest.mark.parametrize("text, lang", [("DIWEDD", "cy"), ("stopio", "cy"), ("STOP", None), ("hi", None)])
def test_a_welsh_stop_word_says_the_reply_should_be_welsh(text, lang):
    assert stopwords.language_of(text) == lang
