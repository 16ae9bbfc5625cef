"""The keypad menu on a call, followed exactly as Twilio follows TwiML, on every key, in both languages."""
from __future__ import annotations

import pytest

from router.definition.flowfile import load_flows
from tests.conftest import (BOXING_DAY_SUBSTITUTE_NOON, CHRISTMAS_3AM, FLOWS, WEEKDAY_NOON,
                            WEEKNIGHT_3AM)
from tests.support import LANDLINE, Call

CONTRACT_KEYS = {
    "1": "+448082000247",  # National Domestic Abuse Helpline
    "2": "+448088010327",  # Men's Advice Line
    "3": "+448009995428",  # Galop
    "4": "+448005999247",  # Karma Nirvana
    "5": "+448088005000",  # NSPCC
    "6": "+448088024040",  # Respect Phoneline
}
HELPLINE = CONTRACT_KEYS["1"]
LIVE_FEAR_FREE = "+448088010800"  # key 1 for a Welsh caller (the contract)


def test_greeting_gives_999_and_55_advice_first_then_a_one_digit_keypad_gather(client):
    call = Call(client).start()
    gather = call.gather
    assert gather is not None
    assert gather.get("input") == "dtmf" and gather.get("numDigits") == "1"
    first = call.heard[0]
    assert "999" in first.replace(" ", "") and "55" in first.replace(" ", "")
    assert call.twiml.find("Gather/Say/prosody") is not None, "safety advice is spoken slowly"
    languages = [say.get("language") for say in gather.findall("Say")]
    assert languages[2] == "cy-GB", "the Welsh option is said in Welsh, straight after option 1"
    assert all(lang == "en-GB" for i, lang in enumerate(languages) if i != 2)
    assert call.twiml.find("Redirect") is not None, "silence must never be dead air"


@pytest.mark.parametrize("lang_keys", [[], ["9"]], ids=["en", "cy"])
@pytest.mark.parametrize("key", sorted(CONTRACT_KEYS))
def test_every_key_dials_its_service_in_e164_while_open(app_at, key, lang_keys):
    call = Call(app_at(WEEKDAY_NOON)).start()
    for k in lang_keys:
        call.press(k)
    call.press(key)
    assert call.dialled == [LIVE_FEAR_FREE if lang_keys and key == "1" else CONTRACT_KEYS[key]]
    dial = call.twiml.find("Dial")
    assert dial.get("answerOnBridge") == "true"
    assert 5 <= int(dial.get("timeout")) <= 60
    assert dial.get("action")
    if lang_keys:
        assert {say.get("voice") for say in call.twiml.iter("Say")} == {"Polly.Gwyneth"}
        assert {say.get("language") for say in call.twiml.iter("Say")} == {"cy-GB"}


def test_key_9_speaks_the_whole_menu_in_welsh_and_9_again_returns_to_english(client):
    call = Call(client).start().press("9")
    assert "pwyswch" in call.text() and "999" in call.text().replace(" ", "")
    welsh_voices = [s for s in call.twiml.iter("Say") if s.get("voice") == "Polly.Gwyneth"]
    assert len(welsh_voices) >= 8
    call.press("9")
    assert "press 1" in call.text()


@pytest.mark.parametrize("key", ["0", "*"])
def test_zero_or_star_repeats_the_options(client, key):
    call = Call(client).start()
    options = call.heard[1:]  # everything after the safety advice
    call.press(key)
    assert call.heard == options


def test_wrong_key_says_so_briefly_and_repeats_the_menu(client):
    call = Call(client).start().press("7").press("8")  # on the main menu, 8 cancels texts (issue 18)
    assert call.heard[0].startswith("Sorry")
    assert any("press 1" in line for line in call.heard)
    assert call.gather is not None


def test_silence_after_the_first_reading_puts_the_caller_through_to_the_24_hour_line(client):
    call = Call(client).start()
    call.silence()
    assert call.dialled == [HELPLINE] and not call.hung_up
    assert "abuse" not in call.text().lower() and "Helpline" not in call.text()
    assert "press" not in call.text(), "the menu is not read again"


def test_silence_in_a_sub_menu_after_a_keypress_hears_it_once_more(client):
    call = Call(client).start().press("7").silence()
    assert not call.hung_up and call.dialled == [] and "Childline" in call.text()


def test_sub_menu_other_helplines_reaches_childline(client):
    call = Call(client).start().press("7")
    assert any("Childline" in line for line in call.heard)
    call.press("1")
    assert call.dialled == ["+448001111"]


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed"])
def test_busy_or_unanswered_service_offers_to_try_again_or_the_24_hour_helpline(app_at, status):
    call = Call(app_at(WEEKDAY_NOON)).start().press("2").dial_ends(status)
    assert "nobody was free to answer" in call.text()
    assert "To try again, press 1" in call.text()
    assert "National Domestic Abuse Helpline, which is open now, press 3" in call.text()
    call.press("3")
    assert call.dialled == [HELPLINE]
    call = Call(app_at(WEEKDAY_NOON)).start().press("2").dial_ends(status).press("1")
    assert call.dialled == [CONTRACT_KEYS["2"]]


def test_completed_call_ends_politely_for_a_landline(app_at):
    call = Call(app_at(WEEKDAY_NOON), caller=LANDLINE).start().press("3").dial_ends("completed")
    assert "text" not in call.text() and "For the main menu, press 9" in call.text()
    call.silence()
    assert call.hung_up and call.heard == ["Thank you for calling. Goodbye."]


@pytest.mark.parametrize("caller", [LANDLINE, "+447400123456"], ids=["landline", "mobile"])
def test_after_a_call_that_answered_1_puts_through_to_the_24_hour_line_and_9_is_the_menu(app_at, caller):
    """Issue 19: a caller whose chosen line answered with a recording was stranded ("not one of the options")."""
    call = Call(app_at(WEEKDAY_NOON), caller=caller).start().press("2").dial_ends("completed")
    assert "To be put through to the National Domestic Abuse Helpline, which is open now, press 1" in call.text()
    call.press("1")
    assert call.dialled == [HELPLINE]
    call = Call(app_at(WEEKDAY_NOON), caller=caller).start().press("2").dial_ends("completed").press("9")
    assert "Domestic abuse, press 1" in call.text() and "Sorry" not in call.text()


def test_after_childline_a_child_is_offered_childline_again_never_an_adult_line(app_at):
    call = Call(app_at(WEEKNIGHT_3AM)).start().press("7").press("1").dial_ends("completed")
    assert "To try again, press 1" in call.text() and "National Domestic Abuse Helpline" not in call.text()
    call.press("1")
    assert call.dialled == ["+448001111"]


def test_closed_service_says_its_hours_and_offers_the_24_hour_helpline(app_at):
    call = Call(app_at(WEEKNIGHT_3AM)).start().press("2")
    assert call.dialled == []
    text = call.text()
    assert "Men's Advice Line is closed now" in text
    assert "Monday to Friday, 10am to 8pm" in text
    assert "opens today at 10am" in text
    call.press("1")
    assert call.dialled == [HELPLINE]


def test_christmas_day_pressing_2_hears_closed_and_next_opening_after_the_bank_holidays(app_at):
    call = Call(app_at(CHRISTMAS_3AM)).start().press("2")
    assert "closed now" in call.text()
    assert "opens on Tuesday at 10am" in call.text()  # 25, 26 (Sat), 27 (Sun), 28 (substitute day)


def test_bank_holiday_closes_a_service_that_is_open_on_that_weekday(app_at):
    call = Call(app_at(BOXING_DAY_SUBSTITUTE_NOON)).start().press("4")  # Karma Nirvana, Mon-Fri
    assert call.dialled == []
    assert "closed on bank holidays" in call.text()
    call = Call(app_at(BOXING_DAY_SUBSTITUTE_NOON)).start().press("1")  # 24 hours: still open
    assert call.dialled == [HELPLINE]


def test_closed_service_in_welsh_speaks_welsh_and_offers_wales_own_24_hour_line(app_at):
    call = Call(app_at(WEEKNIGHT_3AM)).start().press("9").press("2")
    assert "ar gau nawr" in call.text() and "i Linell Gymorth Byw Heb Ofn, sydd ar agor nawr" in call.text()
    call.press("1")
    assert call.dialled == [LIVE_FEAR_FREE]


def test_stale_or_tampered_place_in_the_url_falls_back_to_the_menu(client):
    call = Call(client)
    call._post("/voice/key?at=no_such_node&lang=xx", Digits="1")
    assert call.dialled == [HELPLINE]


def test_numbers_are_read_in_groups_digit_by_digit(app_at):
    call = Call(app_at(WEEKNIGHT_3AM), caller=LANDLINE).start().press("1").dial_ends("busy")
    assert "oh eight oh eight, two thousand, two four seven" in call.text()
    assert "808" not in call.text()


def test_every_service_reachable_by_key_in_both_languages_is_dialled_while_open():
    flows = load_flows(FLOWS)
    dialled = set()
    from router import engine

    for lang in flows.config.languages:
        ctx = engine.Context(flows, engine.VOICE, lang, WEEKDAY_NOON)
        for key in "1234567":
            step = engine.resume(ctx, "main", engine.Keys(key))
            if step.dial:
                dialled.add(step.dial.number)
            for sub in "123456":
                inner = engine.resume(ctx, step.at, engine.Keys(sub)) if step.at == "other_helplines" else None
                if inner and inner.dial:
                    dialled.add(inner.dial.number)
    only_fallbacks = {"fcdo_global_response_centre"}  # offered when the Forced Marriage Unit is closed
    assert dialled == {s.e164 for s in flows.services.values() if s.id not in only_fallbacks}
