"""The pure parts: opening hours, numbers read aloud, who may get a text, follow-up times."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from router import engine
from router.engine import walking
from router.definition import hours, phone
from router.definition.flowfile import load_flows
from router.definition.hours import LONDON
from tests.conftest import CHRISTMAS_3AM, FLOWS, WEEKDAY_NOON, WEEKNIGHT_3AM


@pytest.fixture(scope="module")
def flows():
    return load_flows(FLOWS)


@pytest.mark.parametrize("display, spoken", [
    ("0808 2000 247", "oh eight oh eight, two thousand, two four seven"),
    ("0800 1111", "oh eight hundred, one one one one"),
    ("0808 801 0327", "oh eight oh eight, eight oh one, oh three two seven"),
    ("020 7008 0151", "oh two oh, seven oh oh eight, oh one five one"),
])
def test_numbers_are_read_in_their_published_groups(display, spoken):
    assert phone.speak_number(display) == spoken


def test_welsh_digits():
    assert phone.speak_number("0800 1111", "cy") == "dim wyth dim dim, un un un un"


@pytest.mark.parametrize("number, textable", [
    ("+447400123456", True), ("07400 123456", True), ("+442071234567", False), ("+448082000247", False),
    ("Anonymous", False), ("anonymous", False), ("+266696687", False), ("+7378742833", False),
    ("+2562533", False), ("+8656696", False), ("+86282452253", False), ("", False), (None, False),
    ("not a number", False), ("+15005550006", False),
])
def test_only_valid_uk_style_mobiles_can_receive_texts(number, textable):
    assert phone.can_receive_texts(number) is textable


def test_service_numbers_must_be_free_valid_uk_numbers():
    phone.check_service_number("0808 2000 247")
    for bad, reason in [("09012 345678", "premium-rate"), ("0845 600 0000", "premium-rate|shared-cost"),
                        ("+1 202 555 0143", "not a UK number"), ("0808", "not a valid")]:
        with pytest.raises(ValueError, match=reason):
            phone.check_service_number(bad)


@pytest.mark.parametrize("spec, spans", [
    ("09:00-17:00", ((540, 1020),)),
    ("09:00-12:00, 13:00-17:00", ((540, 720), (780, 1020))),
    ("closed", ()),
    ("20:00-24:00", ((1200, 1440),)),
])
def test_hours_parse(spec, spans):
    assert hours.parse_day(spec) == spans


@pytest.mark.parametrize("spec", ["9-5", "17:00-09:00", "09:00-12:00, 11:00-13:00", "25:00-26:00"])
def test_bad_hours_are_refused(spec):
    with pytest.raises(ValueError):
        hours.parse_day(spec)


def test_open_and_closed_with_bank_holidays(flows):
    mal = flows.services["mens_advice_line"].schedule
    assert mal.is_open(WEEKDAY_NOON, "ENG")
    assert not mal.is_open(WEEKNIGHT_3AM, "ENG")
    assert not mal.is_open(datetime(2026, 12, 28, 12, tzinfo=LONDON), "ENG")  # substitute Boxing Day
    assert mal.next_opening(CHRISTMAS_3AM, "ENG") == datetime(2026, 12, 29, 10, tzinfo=LONDON)
    assert flows.services["national_domestic_abuse_helpline"].schedule.is_open(CHRISTMAS_3AM, "ENG")


def test_clock_changes_are_london_time(flows):
    galop = flows.services["galop"].schedule
    summer = datetime(2026, 7, 1, 9, 30, tzinfo=LONDON)   # 08:30 UTC
    assert not galop.is_open(summer, "ENG") and galop.is_open(summer + timedelta(minutes=30), "ENG")


def test_fallback_chain_reaches_an_open_service(flows):
    ctx = engine.Context(flows, engine.VOICE, "en", WEEKNIGHT_3AM)
    fallback = engine.open_fallback(ctx, flows.services["galop"])
    assert fallback.id == "national_domestic_abuse_helpline"


def test_followup_times(flows):
    ctx = engine.Context(flows, engine.VOICE, "en", datetime(2026, 11, 24, 22, 30, tzinfo=LONDON))
    assert engine.followup_time(ctx, "now") == ctx.now
    assert engine.followup_time(ctx, "later") == ctx.now + timedelta(minutes=60)
    assert engine.followup_time(ctx, "morning") == datetime(2026, 11, 25, 9, 0, tzinfo=LONDON)
    early = engine.Context(flows, engine.VOICE, "en", datetime(2026, 11, 24, 3, 0, tzinfo=LONDON))
    assert engine.followup_time(early, "morning") == datetime(2026, 11, 24, 9, 0, tzinfo=LONDON)


def test_followup_body_is_discreet_unless_the_service_says_otherwise(flows):
    ctx = engine.Context(flows, engine.VOICE, "en", WEEKDAY_NOON, can_text=True)
    step = engine.schedule_followup(ctx, flows.services["galop"], "now")
    assert "0800 999 5428" in step.followup.body and "Galop" not in step.followup.body
    assert "STOP" not in step.followup.body, "Twilio would take a STOP and block the 999 advice later"
    named = flows.services["galop"].model_copy(update={"name_in_followup": True})
    assert engine.schedule_followup(ctx, named, "now").followup.body.startswith("Galop")


def test_no_followup_is_offered_to_a_number_that_cannot_take_texts(flows):
    for channel in (engine.VOICE, engine.SMS):
        ctx = engine.Context(flows, channel, "en", WEEKNIGHT_3AM, can_text=False)
        step = engine.resume(ctx, "main", engine.Keys("2"))
        assert all("text" not in c.text.lower() or "menu" in c.text.lower() for c in step.choices)
        for place in ("closed:galop", "after:galop", "consent:galop", "when:galop", "info:galop"):
            for key in "12389":
                assert engine.resume(ctx, place, engine.Keys(key)).followup is None


def test_the_engine_is_pure_the_same_input_gives_the_same_step(flows):
    ctx = engine.Context(flows, engine.SMS, "cy", CHRISTMAS_3AM, can_text=True)
    assert engine.resume(ctx, "main", engine.Keys("3")) == engine.resume(ctx, "main", engine.Keys("3"))


def test_a_holiday_at_a_weekend_counts_only_on_its_substitute_day(flows):
    """Boxing Day 2026 is Saturday 26 December; the bank holiday people have off is Monday 28 December
    (the `holidays` package lists both: only the day "observed" is a day off)."""
    nspcc = flows.services["nspcc_helpline"].schedule  # open weekends 9am to 6pm, closed on bank holidays
    assert not hours.is_bank_holiday(datetime(2026, 12, 26).date(), "ENG")
    assert hours.is_bank_holiday(datetime(2026, 12, 28).date(), "ENG")
    assert nspcc.is_open(datetime(2026, 12, 26, 12, tzinfo=LONDON), "ENG")
    assert not nspcc.is_open(datetime(2026, 12, 28, 12, tzinfo=LONDON), "ENG")
    assert hours.is_bank_holiday(datetime(2026, 12, 25).date(), "ENG")  # a Friday: the day itself
    assert not hours.is_bank_holiday(datetime(2027, 12, 25).date(), "ENG")  # Saturday: Monday 27th is
    assert hours.is_bank_holiday(datetime(2027, 12, 27).date(), "ENG")


@pytest.mark.parametrize("text, said", [
    ("Rydyn ni'n eich trosglwyddo i Llinell Gymorth Byw Heb Ofn.", "Rydyn ni'n eich trosglwyddo i Linell Gymorth Byw Heb Ofn."),
    ("I gael eich trosglwyddo i llinell gymorth yr NSPCC, pwyswch 1.", "I gael eich trosglwyddo i linell gymorth yr NSPCC, pwyswch 1."),
    ("Mae yr Uned Priodasau dan Orfod ar gau nawr.", "Mae'r Uned Priodasau dan Orfod ar gau nawr."),
    ("Rydyn ni'n eich trosglwyddo i yr Uned.", "Rydyn ni'n eich trosglwyddo i'r Uned."),
    ("Rydyn ni'n eich trosglwyddo i Childline.", "Rydyn ni'n eich trosglwyddo i Childline."),   # an English name: never
    ("Rydyn ni'n eich trosglwyddo i Galop.", "Rydyn ni'n eich trosglwyddo i Galop."),
])
def test_welsh_mutates_and_contracts_after_i_and_mae(text, said):
    from router.engine.grammar import welsh_grammar

    assert welsh_grammar(text) == said


def test_a_name_with_an_apposition_is_closed_by_a_comma_when_the_sentence_goes_on(flows):
    ctx = engine.Context(flows, engine.VOICE, "en", WEEKNIGHT_3AM)
    galop = flows.services["galop"]
    closed = engine.resume(ctx, "main", engine.Keys("3")).lines[0].text
    assert closed.startswith("Galop, the National LGBT+ Domestic Abuse Helpline, is closed now."), closed
    assert engine.connect(engine.Context(flows, engine.VOICE, "en", WEEKDAY_NOON), galop).lines[0].text == \
        "Putting you through to Galop, the National LGBT+ Domestic Abuse Helpline. Please hold."


# ------------------------------------------------------------------ typed inputs (issue 22)
def test_the_engine_takes_typed_inputs_and_refuses_loose_strings(flows):
    """A call's key, silence and dial result reach the engine as typed values (router/engine/inputs.py):
    each gives what its step function gives, and a bare string (the old loose input) is refused."""
    ctx = engine.Context(flows, engine.VOICE, "en", WEEKNIGHT_3AM, can_text=True)
    assert engine.resume(ctx, "main", engine.Keys("3")) == walking.press(ctx, "main", "3")
    assert engine.resume(ctx, "main", engine.Keys("9", recent="9", recent_lang="en")).at == engine.POLICE
    assert engine.resume(ctx, "main", engine.Silence(2)) == walking.silence(ctx, "main", 2)
    busy = engine.resume(ctx, None, engine.DialResult("galop", "busy"))
    assert busy.at == "unanswered:galop" and busy == walking.dial_result(ctx, "galop", "busy")
    with pytest.raises(TypeError):
        engine.resume(ctx, "main", "3")


@pytest.mark.parametrize("body, word, stop, urgent", [
    ("option 1", "1", False, False), ("  Stop ", "STOP", True, True), ("999", "999", False, True),
    ("help me", "HELPME", False, True), ("I want to end it all", "IWANTTOENDITALL", False, True),
    ("Cymraeg", "CYMRAEG", False, False),
])
def test_a_text_is_read_by_the_engine_not_the_blueprint(body, word, stop, urgent):
    from router.engine.texting import Reading

    reading = Reading(engine.Text(body))
    assert (reading.word, reading.is_stop, reading.urgent) == (word, stop, urgent)
    assert Reading(engine.Text("hello"), opted_out=True).is_stop  # Twilio's own opt-out is a stop
