"""Bursts of keys, as someone following the 999 advice types them: the advice they lead to is heard whole.

Twilio stops a <Say> nested in a <Gather> at the first key (https://www.twilio.com/docs/voice/twiml/gather,
"Nest other verbs"), and keys typed between two documents may be kept for the next Gather or lost.
tests.support.Call.burst plays each document with router/simulator/callplayer.py, the simulator's player, so a
key that cuts words off shows here (Said.cut).
"""
from __future__ import annotations

from collections import deque
from datetime import datetime

import pytest

from router.simulator import callplayer
from router.definition.hours import LONDON
from tests.conftest import WEEKDAY_NOON
from tests.support import Call

SUNDAY_3AM = datetime(2026, 11, 15, 3, 0, tzinfo=LONDON)
POLICE = {"en": "To reach the police, hang up and dial 9 9 9", "cy": "I gael yr heddlu"}
CHOICES = {"en": "To be put through to a 24-hour helpline, press 1", "cy": "I gael eich trosglwyddo i linell gymorth 24 awr"}


def heard_whole(call: Call, words: str) -> bool:
    return any(words in s.text and not s.cut for s in call.said) and not any(words in s.text and s.cut for s in call.said)


@pytest.mark.parametrize("typed_ahead", [callplayer.KEPT, callplayer.LOST])
@pytest.mark.parametrize("when", [WEEKDAY_NOON, SUNDAY_3AM], ids=["day", "night"])
@pytest.mark.parametrize("keys", ["999", "55", "5555", "9999"])
def test_a_burst_hears_the_police_advice_whole_then_the_choices(app_at, keys, when, typed_ahead):
    call = Call(app_at(when)).start().burst(keys, typed_ahead)
    assert heard_whole(call, POLICE["en"]), [(s.text[:40], s.cut) for s in call.said]
    assert "cough or tap" in " ".join(s.text for s in call.said if not s.cut)
    assert CHOICES["en"] in call.text() and call.gather is not None, "listening at the choices, in English"
    assert call.dialled == [], "nobody is put through by a burst"
    call.press("1")
    assert call.dialled == ["+448082000247"]


@pytest.mark.parametrize("typed_ahead", [callplayer.KEPT, callplayer.LOST])
@pytest.mark.parametrize("keys", ["999", "55", "5555"])
def test_a_welsh_caller_bursting_hears_the_police_advice_whole_in_welsh(app_at, keys, typed_ahead):
    call = Call(app_at(WEEKDAY_NOON))
    call._post("/voice/key?at=main&lang=cy", Digits="0")  # in the Welsh menu, hearing it again
    call.burst(keys, typed_ahead)
    assert heard_whole(call, POLICE["cy"]), [(s.text[:40], s.cut) for s in call.said]
    assert CHOICES["cy"] in call.text()


def test_the_player_shows_a_cut_when_the_advice_is_inside_the_gather():
    """The TwiML of before: the police advice nested in the Gather of its choices. A burst's next key
    cuts it off, and the player says so (the bug issue 17 found: only "press 1 / press 0" was heard)."""
    document = callplayer.parse(
        '<Response><Gather action="/voice/key?at=police" numDigits="1"><Say><prosody rate="90%">'
        'To reach the police, hang up and dial 9 9 9.</prosody></Say><Say>press 1</Say></Gather></Response>')
    turn = callplayer.play(document, "/voice/key", callplayer.Burst(""), deque("9"))
    assert turn.said == [callplayer.Said("To reach the police, hang up and dial 9 9 9.", None, True, cut=True)]
    assert turn.request == ("/voice/key?at=police", {"Digits": "9"})


def test_keys_typed_while_nothing_listens_are_kept_or_lost_as_chosen():
    document = callplayer.parse('<Response><Say>advice</Say><Gather action="/k"><Say>choices</Say></Gather>'
                                '<Redirect>/silence</Redirect></Response>')
    kept = callplayer.play(document, "/voice", callplayer.Burst(""), deque("9"), keys=callplayer.KEPT)
    assert [(s.text, s.cut) for s in kept.said] == [("advice", False), ("choices", True)]
    assert kept.request == ("/k", {"Digits": "9"})
    lost = callplayer.play(document, "/voice", callplayer.Burst(""), deque("9"), keys=callplayer.LOST)
    assert [(s.text, s.cut) for s in lost.said] == [("advice", False), ("choices", False)]
    assert lost.ended == callplayer.WAIT


def test_a_hash_alone_is_a_key_not_silence(client):
    """Twilio's Gather ends on "#" by default and sends nothing: the caller would hear "We did not hear a key"."""
    call = Call(client).start()
    assert call.gather.get("finishOnKey") == ""
    call.press("#")
    assert call.heard[0].startswith("Sorry, that is not one of the options") and call.dialled == []


@pytest.mark.parametrize("typed_ahead", [callplayer.KEPT, callplayer.LOST])
def test_2_2_2_typed_fast_hears_what_was_booked_twice_before_the_call_ends(app_at, typed_ahead):
    """Issue 19: "2, 2, 2" booked a text and hung up before the person had heard what was booked."""
    call = Call(app_at(SUNDAY_3AM)).start().burst("222", typed_ahead)
    whole = [s.text for s in call.said if not s.cut]
    booked = "We will text you in about an hour. To cancel it, call this number again and press 8."
    assert whole.count(booked) == 2 and whole[-1] == "Goodbye." and call.hung_up
