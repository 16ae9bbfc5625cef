"""The text channel's rules as the engine holds them (router/engine/texting.py), one row per situation:
which answer a text gets, with no Flask, Twilio or Redis in the way. The webhook's own tests
(tests/test_sms.py, test_texts_as_typed.py) check the same answers arrive through the blueprint."""
from __future__ import annotations

import pytest

from router import engine
from router.definition.flowfile import load_flows
from router.engine import texting
from router.engine.texting import Reading
from tests.conftest import FLOWS, WEEKDAY_NOON

STATE_DOWN, NEUTRAL, LANDLINE, ADVICE_ONLY = "redis down", "to the follow-up sender", "from a landline", "past limits"


@pytest.fixture(scope="module")
def flows():
    return load_flows(FLOWS)


def answer(flows, situation: str, body: str, at: str | None = "main", fresh: bool = True,
           cancelled: int | None = 0) -> engine.Step:
    ctx = engine.Context(flows, engine.SMS, "en", WEEKDAY_NOON, can_text=True)
    reading = Reading(engine.Text(body))
    if reading.is_stop:
        return texting.decide_neutral(reading, cancelled, ctx) if situation == NEUTRAL else \
            texting.decide_stop(reading, cancelled, ctx)
    return {
        "in a conversation": lambda: texting.decide(flows, reading, at, fresh, ctx),
        STATE_DOWN: lambda: texting.decide_stateless(flows, reading, ctx),
        NEUTRAL: lambda: texting.decide_neutral(reading, cancelled, ctx),
        LANDLINE: lambda: texting.decide_landline(reading, ctx),
        ADVICE_ONLY: lambda: texting.decide_advice_only(reading, ctx),
    }[situation]()


@pytest.mark.parametrize("situation, body, at, event", [
    ("in a conversation", "I want to end it all", "main", ("sms_crisis", "samaritans")),
    ("in a conversation", "999", "main", ("police_advice", "sms")),
    ("in a conversation", "hello there", "main", ("sms_not_understood", "reply")),
    ("in a conversation", "No", "when:galop", ("sms_stop", "stop")),       # nothing is booked
    ("in a conversation", "option 3", "main", ("service_chosen", "galop")),
    ("in a conversation", "stop texting me", "main", ("sms_stop", "stop")),
    (STATE_DOWN, "3", None, ("service_chosen", "galop")),
    (STATE_DOWN, "kill myself", None, ("sms_crisis", "samaritans")),
    (NEUTRAL, "who is this?", None, ("sms_discreet", "reply")),
    (NEUTRAL, "55", None, ("police_advice", "sms")),
    (LANDLINE, "hi", None, ("sms_landline", "reply")),
    (ADVICE_ONLY, "hi", None, ("sms_limited", "advice")),
    (ADVICE_ONLY, "help", None, ("police_advice", "sms")),
], ids=lambda value: value if isinstance(value, str) else None)
def test_each_situation_gets_its_answer(flows, situation, body, at, event):
    assert event in answer(flows, situation, body, at).events


@pytest.mark.parametrize("situation", [NEUTRAL, LANDLINE])
def test_no_way_into_the_menu_where_a_reply_may_give_the_person_away(flows, situation):
    for body in ("hi", "55", "I want to die", "menu"):
        step = answer(flows, situation, body, at=None)
        assert step.at is None and not step.choices, (situation, body)


def test_a_stop_redis_could_not_record_is_never_called_cancelled(flows):
    assert ("sms_stop", "failed") in answer(flows, "in a conversation", "STOP", cancelled=None).events
    assert ("sms_stop", "failed") in answer(flows, NEUTRAL, "STOP", cancelled=None).events


def test_a_retried_text_advances_nothing(flows):
    retried = answer(flows, "in a conversation", "3", at="main", fresh=False)
    assert retried.at == "main" and not retried.events


def test_a_first_text_of_any_content_gets_the_advice_and_the_menu(flows):
    first = answer(flows, "in a conversation", "3", at=None)
    assert first.at == "main" and "stay on this phone" in " ".join(line.text for line in first.lines)
