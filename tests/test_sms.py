"""The same menu by text, with conversation state in a real Redis server."""
from __future__ import annotations

import re

import pytest
import redis

from router import sms
from tests.conftest import WEEKNIGHT_3AM
from tests.support import ACCOUNT_SID, LANDLINE, MOBILE, Texter, is_broker_key, new_sid, parse, post_signed

EN_MENU = "Reply:\n1 Domestic abuse"
CY_MENU = "Atebwch:\n1 Cam-drin domestig"
STOPPED_EN = "Cancelled. We will not text you again."


def test_first_text_of_any_content_gets_999_advice_register_and_numbered_options(client):
    reply = Texter(client).send("help me please")
    assert "999" in reply and "registered" in reply and "55" in reply
    for key in "1234569":
        assert re.search(rf"^{key} ", reply, re.M), key
    assert reply.index("999") < reply.index("Automatic: nobody reads texts") < reply.index("1 Domestic abuse")
    assert "0 Menu" not in reply, "on the main menu, '0 Menu' adds nothing"
    assert "not one of the options" not in reply


def test_reply_with_a_number_gives_the_service_number_hours_open_now_and_website(client):
    texter = Texter(client)
    texter.send("hi")
    reply = texter.send("4")
    assert "0800 5999 247" in reply
    assert "Mon-Fri 9am-5pm" in reply
    assert "Open now" in reply
    assert "https://karmanirvana.org.uk" in reply


def test_closed_service_by_text_says_when_it_opens_and_gives_the_24_hour_line(app_at):
    texter = Texter(app_at(WEEKNIGHT_3AM))
    texter.send("hello")
    reply = texter.send("2")
    assert "0808 801 0327" in reply and "Closed now, opens today 10am." in reply and "Mon-Fri 10am-8pm" in reply
    assert "0808 2000 247" in reply


def test_sub_menu_works_by_numbered_replies(client):
    texter = Texter(client)
    texter.send("hi")
    assert "Childline" in texter.send("7")
    assert "0800 1111" in texter.send("1")


def test_a_number_after_an_answer_is_read_as_a_new_choice_from_the_menu(client):
    texter = Texter(client)
    texter.send("hi")
    texter.send("4")
    assert "0800 999 5428" in texter.send("3")


def test_whole_conversation_in_welsh(client):
    texter = Texter(client)
    texter.send("hi")
    reply = texter.send("9")
    assert CY_MENU in reply and "999" in reply
    reply = texter.send("1")
    assert "0808 80 10 800" in reply and "Ar agor" in reply  # Welsh: Live Fear Free
    assert CY_MENU in texter.send("MENU"), "MENU keeps the language"
    reply = texter.send("ENGLISH")
    assert EN_MENU in reply


@pytest.mark.parametrize("word", ["MENU", "menu", " Help ", "0", "dewislen"])
def test_menu_keywords_bring_the_menu_back(client, word):
    texter = Texter(client)
    texter.send("hi")
    texter.send("7")
    assert EN_MENU in texter.send(word)


@pytest.mark.parametrize("word", ["CYMRAEG", "cymraeg", "Cym raeg"])
def test_cymraeg_switches_to_welsh(client, word):
    texter = Texter(client)
    texter.send("hi")
    assert CY_MENU in texter.send(word)
    assert "Ar agor" in texter.send("1")


@pytest.mark.parametrize("word", sorted(sms.STOP_WORDS) + ["stop", " Stop "])
def test_stop_words_forget_the_conversation_with_one_neutral_line(client, word, redis_url):
    texter = Texter(client)
    texter.send("hi")
    texter.send("9")
    reply = texter.send(word)
    assert "\n" not in reply and len(reply) < 60 and "1 " not in reply
    assert reply.startswith("Iawn"), "the conversation was in Welsh: so is the answer"
    keys = [k for k in redis.Redis.from_url(redis_url).keys("hr:conv:*")]
    assert keys == []
    assert EN_MENU in texter.send("1"), "after STOP the next text starts afresh in English"


def test_unknown_reply_gets_the_menu_again_not_an_error(client):
    texter = Texter(client)
    texter.send("hi")
    reply = texter.send("what do I do <script>")
    assert EN_MENU in reply


def test_retried_message_sid_does_not_advance_the_conversation_twice(client):
    texter = Texter(client)
    texter.send("hi")
    sid = new_sid("SM")
    first = texter.send("7", message_sid=sid)
    again = texter.send("7", message_sid=sid)
    assert "Childline" in first and again == first
    assert "0800 1111" in texter.send("1"), "still in the sub-menu: the retry did not advance twice"


def test_redis_stopped_mid_conversation_still_answers_top_level_and_menu(client, redis_server):
    texter = Texter(client)
    texter.send("hi")
    redis_server.stop()
    try:
        assert "0808 801 0327" in texter.send("2"), "a top-level choice works statelessly"
        assert EN_MENU in texter.send("hello"), "anything else gets the menu"
        assert texter.send("STOP") == STOPPED_EN, "STOP still answers with Redis down"
    finally:
        redis_server.start()


def test_every_key_has_a_ttl_and_no_key_or_value_holds_the_number_or_text(client, redis_url):
    texter = Texter(client, sender=MOBILE)
    texter.send("my secret words")
    texter.send("9")
    texter.send("7")
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = r.keys("*")
    assert keys, "the conversation is in Redis"
    national = MOBILE.replace("+44", "0")
    for key in keys:
        assert r.ttl(key) > 0 or is_broker_key(key), key
        assert MOBILE[1:] not in key and national not in key
        dump = repr(r.dump(key))
        assert MOBILE[1:] not in dump and national[1:] not in dump and "secret" not in dump


def test_conversation_state_ttl_comes_from_config(client, redis_url):
    Texter(client).send("hi")
    r = redis.Redis.from_url(redis_url)
    (key,) = r.keys("hr:conv:*")
    assert 25 * 60 < r.ttl(key) <= 30 * 60


def test_landline_texter_is_never_offered_a_follow_up(client):
    texter = Texter(client, sender=LANDLINE)
    texter.send("hi")
    assert "Reply 8" not in texter.send("1")


def test_free_text_in_a_conversation_gets_the_automatic_note_and_the_menu_not_a_wrong_key(client):
    texter = Texter(client)
    texter.send("hi")
    texter.send("7")
    reply = texter.send("help me please")
    assert "not one of the options" not in reply
    assert reply.index("999") < reply.index("Automatic: nobody reads texts") < reply.index("1 Domestic abuse")
    assert "not one of the options" in texter.send("8"), "a key that is no option still says so"


def test_other_helplines_by_text_has_one_way_back_and_8_only_ever_means_text_me_later(client):
    texter = Texter(client)
    texter.send("hi")
    sub = texter.send("7")
    assert "0 Menu" in sub and "Main menu" not in sub
    assert not re.search(r"^[89] ", sub, re.M)
    assert EN_MENU in texter.send("0")


def test_a_phone_sent_a_follow_up_gets_the_discreet_answer_until_it_asks_for_the_menu(client, redis_url):
    texter = Texter(client)
    for body in ["hi", "3", "8", "2"]:
        texter.send(body)
    for body in ["Who is this?", "3", "hello"]:
        reply = texter.send(body)
        assert reply.startswith("Automatic number") and "Galop" not in reply and "abuse" not in reply.lower()
    assert EN_MENU.split("\n")[1] in texter.send("MENU")
    assert "0800 999 5428" in texter.send("3"), "from the menu on, the conversation is as ever"
    keys = redis.Redis.from_url(redis_url, decode_responses=True).keys("hr:fu-to:*")
    assert len(keys) == 1 and redis.Redis.from_url(redis_url).ttl(keys[0]) > 6 * 24 * 3600


def test_a_retried_webhook_is_not_counted_again_towards_the_reply_limits(client, redis_url):
    texter = Texter(client)
    sid = new_sid("SM")
    for _ in range(30):
        assert EN_MENU.split("\n")[1] in texter.send("hi", message_sid=sid)
    (key,) = redis.Redis.from_url(redis_url, decode_responses=True).keys("hr:lim-reply:*")
    assert redis.Redis.from_url(redis_url).get(key) == b"1"


def test_a_welsh_word_in_an_english_conversation_does_not_switch_its_language(client):
    texter = Texter(client)
    texter.send("hi")
    assert EN_MENU.split("\n")[1] in texter.send("diolch")
    assert "Open now" in texter.send("1")


def test_a_text_to_the_neutral_sender_number_is_answered_discreetly(app_at):
    client = app_at(followup_sender="+447700900999")  # a UK mobile: the only kind of number that can text
    params = {"MessageSid": new_sid("SM"), "AccountSid": ACCOUNT_SID, "From": "+447400111222",
              "To": "+447700900999", "Body": "who is this", "NumMedia": "0"}
    reply = "".join(parse(post_signed(client, "/sms", params).data).find("Message").itertext())
    assert reply.startswith("Automatic number") and "abuse" not in reply.lower()
    assert EN_MENU in Texter(client, sender="+447400111333").send("who is this"), "the helpline number: as ever"


def test_the_simulator_plays_the_discreet_answer_after_a_booking_as_the_app_does():
    from router.simulate import ScriptInputs, Simulator, parse_script
    from tests.conftest import FLOWS, WEEKDAY_NOON

    simulator = Simulator(FLOWS, at=WEEKDAY_NOON, assume_sender=True)
    for _ in range(2):  # and again after a reset, as `router check` runs one scenario after another
        simulator.reset(at=WEEKDAY_NOON)
        transcript = simulator.texts(ScriptInputs(parse_script("hi,3,8,2,who is this")))
        assert transcript.replies[-1].startswith("Automatic number"), transcript.text()


@pytest.mark.parametrize("word", ["55", "999"])
def test_a_phone_texted_lately_still_gets_the_police_advice_for_55_or_999(word):
    """The discreet answer hides what this number is, never how to reach the police."""
    from router import engine
    from router.flowfile import load_flows
    from tests.conftest import FLOWS

    flows = load_flows(FLOWS)
    ctx = engine.Context(flows, engine.SMS, "en", WEEKNIGHT_3AM, True)
    step = sms.decide(flows, sms.keyword(word), None, True, ctx, recent=True)
    text = " ".join(line.text for line in step.lines)
    assert "To reach the police, call 999" in text
    assert "Automatic number" not in text
    other = sms.decide(flows, sms.keyword("who is this"), None, True, ctx, recent=True)
    discreet = " ".join(line.text for line in other.lines)
    assert "Automatic number" in discreet and "Call 999" in discreet, "the discreet answer keeps the 999 line"
