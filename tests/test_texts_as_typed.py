"""Issue 19, texts (items 8-12): stop however it is really typed; never silent to 999 / 55 / help; a
choice understood as typed; the Samaritans for words of crisis; texts that stay on the phone; landlines.
Real app, real Redis, signed webhooks."""
from __future__ import annotations

import re

import pytest
import redis

from tests.support import LANDLINE, Texter

NDAH = "0808 2000 247"
ADVICE = "In danger? Call 999."
POLICE = "To reach the police, call 999"
ISSUE_19_STOPS = ["stop x", "Dont text me in an hour", "stop he's here", "Please stop texting this number",
                  "STOP. Wrong number", "no thanks stop", "Opt-out", "stop all", "opt out", "remove me",
                  "delete my number", "Cancel that", "Cancel the 9am text", "Dont text me tomorrow", "Not safe",
                  "stop its not safe", "S T O P", "stopp", "Sotp", "Dim diolch"]


def has_menu(reply: str) -> bool:
    return bool(re.search(r"^\d ", reply, re.M))


def book(texter: Texter) -> None:
    for body in ["hi", "3", "8", "2"]:
        texter.send(body)


# ------------------------------------------------------------------ 8. stop however it is typed
@pytest.mark.parametrize("form", ISSUE_19_STOPS)
def test_a_stop_as_really_typed_cancels_the_pending_text_with_the_999_advice_never_the_menu(
        client, redis_url, form):
    texter = Texter(client)
    book(texter)
    r = redis.Redis.from_url(redis_url)
    assert r.zcard("hr:fu-due") == 1
    reply = texter.send(form)
    assert r.zcard("hr:fu-due") == 0, "cancelled"
    assert ("Call 999" in reply or "Ffoniwch 999" in reply) and not has_menu(reply), reply


def test_a_false_stop_still_gets_help(client):
    reply = Texter(client).send("stop its not safe he is here")
    assert ADVICE in reply and not has_menu(reply)


# ------------------------------------------------------------------ 9. never silent to someone in danger
def test_past_every_limit_999_55_and_help_are_still_answered_a_few_a_minute(app_at, redis_url):
    client = app_at()
    texter = Texter(client, sender="+447400200001")
    for _ in range(40):  # 30 full answers and 10 with the advice: the sender's whole budget
        texter.send("hello")
    silent = _raw_send(client, "+447400200001", "where are you")
    assert silent == [], "past the budget, ordinary texts get nothing (a faked sender is not flooded)"
    answers = [_raw_send(client, "+447400200001", body)
               for body in ["help", "999", "55", "he is here help me", "HELP", "999"]]
    assert all(len(a) == 1 and POLICE in a[0] for a in answers), answers
    assert _raw_send(client, "+447400200001", "help") == [], "six a minute: the seventh waits (never zero)"


def _raw_send(client, sender: str, body: str) -> list[str]:
    from tests.support import ACCOUNT_SID, HELPLINE_NUMBER, new_sid, parse, post_signed

    sid = new_sid("SM")
    response = post_signed(client, "/sms", {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": sender,
                                            "To": HELPLINE_NUMBER, "Body": body, "NumMedia": "0"})
    return ["".join(m.itertext()) for m in parse(response.data).findall("Message")]


# (the sender's sliding window: tests/test_store_scripts.py, with the arrival script it tests)


# ------------------------------------------------------------------ 10. understood as typed
@pytest.mark.parametrize("typed", ["one", "option 1", "1 please", "number 1", "first one", "1.", "Option One"])
def test_a_choice_is_understood_as_typed(client, typed):
    texter = Texter(client)
    texter.send("hi")
    assert NDAH in texter.send(typed)


def test_a_welsh_number_word_in_a_welsh_conversation(client):
    texter = Texter(client)
    texter.send("hi")
    texter.send("9")
    assert "0808 80 10 800" in texter.send("un")


def test_yes_and_no_where_a_question_was_asked(client, redis_url):
    texter = Texter(client)
    texter.send("hi")
    texter.send("1")
    assert "When is it safe to text you?" in texter.send("yes"), "'Reply 8 for this number by text later' -> yes"
    reply = texter.send("no")
    assert reply.startswith("OK, we will not text this phone.") and ADVICE in reply
    assert redis.Redis.from_url(redis_url).zcard("hr:fu-due") == 0, "nothing booked"


def test_what_we_did_not_understand_says_what_we_expected(client):
    texter = Texter(client)
    texter.send("hi")
    reply = texter.send("which one is for me")
    assert "Reply with a number from the list" in reply and not has_menu(reply)


# ------------------------------------------------------------------ 11. a crisis line for crisis words
@pytest.mark.parametrize("words", ["I want to end it all", "kill myself", "suicidal"])
def test_words_of_crisis_get_the_samaritans_with_the_999_advice(client, words):
    for first in (True, False):
        texter = Texter(client)
        if not first:
            texter.send("hi")
        reply = texter.send(words)
        assert "Samaritans" in reply and "116 123" in reply and "0808 164 0123" in reply and ADVICE in reply


def test_words_of_crisis_in_welsh_get_the_welsh_answer(client):
    texter = Texter(client)
    texter.send("hi")
    texter.send("9")
    reply = texter.send("lladd fy hun")
    assert "ffoniwch 116 123" in reply and "Ffoniwch 999" in reply


# ------------------------------------------------------------------ 12. texts that stay on the phone; landlines
def test_the_first_reply_says_once_that_our_texts_stay_on_the_phone(client):
    texter = Texter(client)
    first = texter.send("hi")
    assert first.index("999") < first.index("Our texts stay on this phone: delete them") < first.index("1 Domestic")
    assert "stay on this phone" not in texter.send("0") and "stay on this phone" not in texter.send("1")


@pytest.mark.parametrize("body", ["hi", "1", "MENU", "help"])
def test_a_landline_gets_the_999_advice_and_the_24_hour_number_only(client, body):
    reply = Texter(client, sender=LANDLINE).send(body)
    assert ADVICE in reply and NDAH in reply and not has_menu(reply)
    assert "abuse" not in reply.lower() and "Reply" not in reply


def test_in_welsh_the_first_reply_says_it_too_and_a_landline_gets_its_welsh_answer(client):
    first = Texter(client, sender="+447400200002").send("Cymraeg")
    assert "Mae ein negeseuon yn aros" in first and "1 Cam-drin domestig" in first
    landline = Texter(client, sender=LANDLINE).send("Cymraeg")
    assert "Ffoniwch 999" in landline and "0808 80 10 800" in landline and not has_menu(landline)


def test_a_welsh_stop_as_typed_is_answered_in_welsh(client):
    reply = Texter(client, sender="+447400200003").send("Dim diolch")
    assert reply.startswith("Iawn") and "Ffoniwch 999" in reply


@pytest.mark.parametrize("lang, keys, words", [
    ("en", "77", ["Call 9 9 9", "Samaritans, day or night: call 1 1 6, 1 2 3, free", "0 8 0 8, 1 6 4, 0 1 2 3"]),
    ("cy", "977", ["Ffoniwch 9 9 9", "ffoniwch 1 1 6, 1 2 3, am ddim", "Yn Gymraeg: 0 8 0 8, 1 6 4, 0 1 2 3"]),
])
def test_callers_find_the_samaritans_under_other_helplines_and_can_hear_the_number_again(client, lang, keys, words):
    from tests.support import Call

    call = Call(client).start()
    for key in keys:
        call.press(key)
    heard = call.text()
    assert all(w in heard for w in words), heard
    assert words[1] in call.press("1").text(), "1: the number again"


# ------------------------------------------------------------------ found reading the change again
@pytest.mark.parametrize("words", ["stop I want to die", "STOP. I want to end it all", "no thanks I am suicidal"])
def test_a_stop_with_words_of_crisis_cancels_and_still_gives_the_samaritans(client, redis_url, words):
    texter = Texter(client)
    book(texter)
    reply = texter.send(words)
    assert redis.Redis.from_url(redis_url).zcard("hr:fu-due") == 0, "a stop: cancelled"
    assert "Samaritans" in reply and "116 123" in reply and ADVICE in reply and not has_menu(reply), reply


@pytest.mark.parametrize("reply_to_when", ["no 1", "no, 2", "1 no"])
def test_a_no_with_a_number_never_books_a_text(client, redis_url, reply_to_when):
    texter = Texter(client)
    texter.send("hi")
    texter.send("1")
    assert "When is it safe to text you?" in texter.send("8")
    texter.send(reply_to_when)
    assert redis.Redis.from_url(redis_url).zcard("hr:fu-due") == 0, "a 'no' is never an explicit yes"


def test_no_to_when_after_an_earlier_booking_makes_we_will_not_text_true(client, redis_url):
    texter = Texter(client)
    book(texter)
    r = redis.Redis.from_url(redis_url)
    assert r.zcard("hr:fu-due") == 1
    texter.send("0")
    texter.send("1")
    assert "When is it safe to text you?" in texter.send("8")
    reply = texter.send("no")
    assert reply.startswith("OK, we will not text this phone.")
    assert r.zcard("hr:fu-due") == 0, "answered 'we will not text this phone': the earlier booking is cancelled"


def test_a_landline_past_its_full_replies_still_gets_no_way_into_the_menu(client):
    landline = Texter(client, sender=LANDLINE)
    for _ in range(31):  # past the 30 full answers: the advice-only level
        landline.send("hello")
    for body in ("999", "I want to end it all", "help"):
        reply = landline.send(body)
        assert "999" in reply and not has_menu(reply) and "Reply 0" not in reply and "menu" not in reply.lower(), reply
