"""The same menu by text, with conversation state in a real Redis server."""
from __future__ import annotations

import re

import pytest
import redis

from router.web import sms
from tests.conftest import WEEKNIGHT_3AM
from tests.support import ACCOUNT_SID, LANDLINE, MOBILE, Texter, is_broker_key, new_sid, parse, post_signed

EN_MENU = "Reply:\n1 Domestic abuse"
CY_MENU = "Atebwch:\n1 Cam-drin domestig"
STOPPED_EN = "OK, we will not text this phone.\nIn danger? Call 999."
NEUTRAL = "+447700900999"  # the follow-up sender of these tests (FOLLOWUP_SENDER): a UK mobile can text


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
    assert not re.search(r"^\d ", reply, re.M) and "Atebwch" not in reply, "never the menu in answer to a stop"
    assert reply.startswith("Iawn"), "the conversation was in Welsh: so is the answer"
    assert "Ffoniwch 999" in reply, "the 999 advice, in case the stop was a cry for help"
    keys = [k for k in redis.Redis.from_url(redis_url).keys("hr:conv:*")]
    assert keys == []
    assert EN_MENU in texter.send("1"), "after STOP the next text starts afresh in English"


def test_an_unknown_reply_says_what_we_expected_not_the_menu_again_nor_an_error(client):
    texter = Texter(client)
    texter.send("hi")
    reply = texter.send("what do I do <script>")
    assert reply == "Sorry, we did not understand. Reply with a number from the list, or 0 for the menu."
    assert "0808 801 0327" in texter.send("2"), "and the list still stands"


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
        reply = texter.send("stop texting me")
        assert "did not work" in reply and "send it again" in reply and "999" in reply, reply
        assert "OK, we will not" not in reply, "a stop Redis could not record is never called done"
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


def test_after_booking_by_text_the_next_text_to_the_helpline_gets_the_menu_not_a_discreet_answer(client, redis_url):
    """Discreet answers are for texts to the follow-up sender; the booking conversation goes on as ever,
    and nothing says this number was ever sent anything (issue 18)."""
    texter = Texter(client)
    for body in ["hi", "3", "8", "2"]:
        texter.send(body)
    assert EN_MENU in texter.send("Who is this?")
    assert "0800 999 5428" in texter.send("3")
    assert redis.Redis.from_url(redis_url).keys("hr:fu-to:*") == [], "no 'texted lately' marker is kept"


def test_a_retried_webhook_is_not_counted_again_towards_the_reply_limits(client, redis_url):
    texter = Texter(client)
    sid = new_sid("SM")
    for _ in range(30):
        assert EN_MENU.split("\n")[1] in texter.send("hi", message_sid=sid)
    (key,) = redis.Redis.from_url(redis_url, decode_responses=True).keys("hr:lim-replies:*")
    assert redis.Redis.from_url(redis_url).zcard(key) == 1


def test_a_welsh_word_in_an_english_conversation_does_not_switch_its_language(client):
    texter = Texter(client)
    texter.send("hi")
    assert "Reply with a number from the list" in texter.send("diolch")
    assert "Open now" in texter.send("1")


def neutral_text(client, body: str, sender: str = "+447400111222", **extra) -> str:
    params = {"MessageSid": new_sid("SM"), "AccountSid": ACCOUNT_SID, "From": sender,
              "To": NEUTRAL, "Body": body, "NumMedia": "0", **extra}
    return "".join(parse(post_signed(client, "/sms", params).data).find("Message").itertext())


def is_discreet(reply: str) -> bool:
    """Reads like any automated business number: no service, no abuse, no menu, no invitation to MENU."""
    lowered = reply.lower()
    return not any(word in lowered for word in ("abuse", "helpline", "menu", "refuge", "galop", "domestic",
                                                "danger", "reply", "0808", "0800"))


@pytest.mark.parametrize("body", ["who is this", "MENU", "help", "1", "hi", "CYMRAEG"])
def test_a_text_to_the_neutral_sender_number_is_answered_discreetly(app_at, body):
    client = app_at(followup_sender=NEUTRAL)
    reply = neutral_text(client, body)
    assert reply.startswith("This is an automated number") and is_discreet(reply), reply
    assert "call 999" in reply
    assert EN_MENU in Texter(client, sender="+447400111333").send("who is this"), "the helpline number: as ever"


def test_a_messaging_service_sender_is_recognised_by_messaging_service_sid(app_at):
    service = "MG" + "a" * 32
    client = app_at(followup_sender=service)
    params = {"MessageSid": new_sid("SM"), "AccountSid": ACCOUNT_SID, "From": "+447400111222",
              "To": "+447700900123", "MessagingServiceSid": service, "Body": "hello", "NumMedia": "0"}
    reply = "".join(parse(post_signed(client, "/sms", params).data).find("Message").itertext())
    assert reply.startswith("This is an automated number") and is_discreet(reply)


@pytest.mark.parametrize("word", ["55", "999"])
def test_the_neutral_sender_still_gives_the_police_advice_for_55_or_999_and_no_way_to_the_menu(app_at, word):
    reply = neutral_text(app_at(followup_sender=NEUTRAL), word)
    assert "To reach the police, call 999" in reply and "55" in reply
    assert "menu" not in reply.lower()


def test_a_stop_to_the_neutral_sender_is_answered_as_any_automated_number_would(app_at):
    reply = neutral_text(app_at(followup_sender=NEUTRAL), "stop texting me")
    assert reply == "OK, we will not text this phone.\nIn an emergency, call 999."


def test_with_redis_down_a_text_to_the_neutral_sender_still_gets_no_menu(app_at, redis_server):
    client = app_at(followup_sender=NEUTRAL)
    redis_server.stop()
    try:
        reply = neutral_text(client, "who is this")
        assert reply.startswith("This is an automated number") and is_discreet(reply)
        stop = neutral_text(client, "stop")
        assert "did not work" in stop and "OK, we will not" not in stop and "call 999" in stop
    finally:
        redis_server.start()


def test_with_redis_paused_a_stop_is_never_answered_done_and_the_neutral_sender_gets_no_menu(app_at, redis_server):
    """Paused, not stopped: every Redis call hangs until its timeout (issue 18: fail closed)."""
    import os
    import signal

    client = app_at(followup_sender=NEUTRAL)
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        stop = Texter(client).send("STOP please")
        neutral = neutral_text(client, "MENU")
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    assert "did not work" in stop and "OK, we will not" not in stop and "999" in stop, stop
    assert neutral.startswith("This is an automated number") and is_discreet(neutral), neutral


# ------------------------------------------------------------------ Twilio's own opt-out (issue 17 item 2)
# https://support.twilio.com/hc/en-us/articles/31560110671259 : with Advanced Opt-Out the webhook still
# arrives, with OptOutType STOP / START / HELP, for a whole-message keyword only.
def opt_out_text(client, body: str, opt_out_type: str, sender: str = MOBILE):
    params = {"MessageSid": new_sid("SM"), "AccountSid": ACCOUNT_SID, "From": sender, "To": "+443300000111",
              "Body": body, "NumMedia": "0", "OptOutType": opt_out_type}
    return parse(post_signed(client, "/sms", params).data)


@pytest.mark.parametrize("body", ["STOP", "DIWEDD", "Stopiwch"])  # the last: a keyword only Twilio knows
def test_twilios_opt_out_cancels_pending_texts_and_sends_no_reply_twilio_would_refuse(client, redis_url, body):
    texter = Texter(client)
    for reply in ["hi", "3", "8", "2"]:
        texter.send(reply)
    r = redis.Redis.from_url(redis_url)
    assert r.zcard("hr:fu-due") == 1
    root = opt_out_text(client, body, "STOP")
    assert root.findall("Message") == [], "Twilio has answered it itself and would refuse ours (21610)"
    assert r.zcard("hr:fu-due") == 0, "but the pending text is cancelled all the same"


def test_an_opt_in_from_twilio_is_answered_as_any_text(client):
    root = opt_out_text(client, "START", "START")
    assert EN_MENU in "".join(root.find("Message").itertext())


def test_no_text_of_ours_asks_for_a_word_twilio_takes_as_an_opt_out():
    """A person told to reply STOP would be opted out by Twilio: every later text from that number, the
    999 advice included, refused (21610) until they text START, and they would never know."""
    from router.definition.flowfile import load_flows
    from router.engine.stopwords import STOP_WORDS
    from tests.conftest import FLOWS

    flows = load_flows(FLOWS)
    for phrase_id, texts in flows.phrases.items():
        for lang, text in texts.items():
            shouted = set(re.findall(r"\b[A-Z]{3,}\b", text))
            assert not shouted & STOP_WORDS, (phrase_id, lang, text)


def test_words_of_crisis_to_the_neutral_sender_get_the_samaritans_and_no_menu(app_at):
    reply = neutral_text(app_at(followup_sender=NEUTRAL), "I want to end it all")
    assert "116 123" in reply and "999" in reply and "menu" not in reply.lower(), reply
