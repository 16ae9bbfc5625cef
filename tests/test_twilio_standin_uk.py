"""The stand-in refuses what Twilio refuses on an ordinary UK account, and does what Twilio does by itself.

Each test names the Twilio page it follows (tests/twilio_standin/rules.py has them all). Every body the
twilio client receives from the 2010-04-01 API is also checked against Twilio's OpenAPI description
(the `recorder` fixture of tests/test_twilio_standin.py).
"""
from __future__ import annotations

import pytest

from tests.test_twilio_standin import (  # noqa: F401 - fixtures
    CALLER, OUR_NUMBER, CallbackSink, client, make_standin, recorder, rest_error, send, sink, spec, standin)
from tests.twilio_standin import DEFAULT_SERVICE_NUMBER, DEFAULT_SERVICE_SID, client_for, wait_for

HELPLINE_0808 = "+448082000999"
GEOGRAPHIC = "+442071234567"


# -- https://www.twilio.com/docs/api/errors/30029 and /30030: retention needs Message Redaction ------------

def test_retention_parameters_are_refused_without_message_redaction(standin, client):
    assert rest_error(lambda: send(client, content_retention="discard")).code == 30029
    assert rest_error(lambda: send(client, address_retention="obfuscate")).code == 30030
    assert standin.sent_messages() == []
    assert send(client).sid, "without them the same message goes"


def test_with_redaction_the_text_and_number_are_gone_once_sent(standin, client):
    standin.configure(message_redaction=True)
    assert rest_error(lambda: send(client, content_retention="shred")).code == 30029
    kept = send(client, content_retention="retain", address_retention="retain", body="kept")
    redacted = send(client, body="by default")   # the account's setting applies without parameters

    done = standin.wait_for_status(redacted.sid, "delivered")
    assert (done["body"], done["to"]) == ("", "+44XXXXXXXXXX")
    assert standin.wait_for_status(kept.sid, "delivered")["to"] == CALLER
    assert [m.sid for m in client.messages.list(to=CALLER)] == [kept.sid], \
        "a redacted message cannot be found by the number it went to"


# -- https://www.twilio.com/docs/api/errors/21606, https://www.twilio.com/guidelines/gb/sms: who may text --

@pytest.mark.parametrize("sender", [HELPLINE_0808, GEOGRAPHIC, "+443300000111"])
def test_a_uk_number_that_is_not_a_mobile_cannot_send(standin, client, sender):
    standin.add_phone_number(sender)
    error = rest_error(lambda: client.messages.create(to=CALLER, from_=sender, body="x"))
    assert (error.status, error.code) == (400, 21606)


def test_mobiles_alphanumeric_ids_and_short_codes_can_and_unowned_numbers_cannot(standin, client):
    assert send(client).sid                                              # OUR_NUMBER, a UK mobile
    assert client.messages.create(to=CALLER, from_="Support", body="x").sid   # one-way sender ID
    assert client.messages.create(to=CALLER, from_="60123", body="x").sid     # a UK short code
    assert rest_error(lambda: client.messages.create(to="+33612345678", from_="60123", body="x")).code in (21606, 21408)
    assert rest_error(lambda: client.messages.create(to=CALLER, from_="+447700900444", body="x")).code == 21606
    assert rest_error(lambda: client.messages.create(to=CALLER, from_="12345678901234", body="x")).code == 21212


def test_an_unknown_or_malformed_messaging_service_is_refused(standin, client):
    # https://www.twilio.com/docs/api/errors/21701 and /21705
    standin.configure(strict_services=True)
    assert rest_error(lambda: client.messages.create(to=CALLER, messaging_service_sid="MG" + "e" * 32,
                                                     body="x")).code == 21701
    assert rest_error(lambda: client.messages.create(to=CALLER, messaging_service_sid="MGnope",
                                                     body="x")).code == 21705


# -- https://www.twilio.com/docs/api/errors/21408: geo permissions --------------------------------------

def test_a_country_the_account_may_not_text_is_refused(standin, client):
    assert rest_error(lambda: send(client, to="+33612345678")).code == 21408
    standin.configure(sms_countries={"GB", "FR"})
    assert send(client, to="+33612345678").sid


# -- https://help.twilio.com/hc/en-us/articles/223134027, https://www.twilio.com/docs/api/errors/21610 and
# -- https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out: Twilio's own opt-out ------------

def test_stop_gets_twilios_own_reply_and_blocks_rest_and_twiml_replies_until_start(standin, client, sink):
    params = standin.receive_text(CALLER, OUR_NUMBER, " stop ")

    assert "OptOutType" not in params, "only Advanced Opt-Out adds OptOutType"
    (answer,) = [m for m in standin.messages.values() if m["direction"] == "outbound-reply"]
    assert answer["to"] == CALLER and "unsubscribed" in answer["body"], "Twilio answers, and keeps a record"
    error = rest_error(lambda: send(client))
    assert (error.status, error.code) == (400, 21610)
    replies = standin.reply_with_twiml(params, '<Response><Message action="/sms/status">Menu</Message></Response>',
                                       sink.url("/sms"))
    assert (replies[0]["status"], replies[0]["error_code"]) == ("failed", 21610)
    callback = wait_for(lambda: sink.received and sink.received[0], description="the reply's action callback")
    assert callback["url"] == sink.url("/sms/status") and callback["form"]["ErrorCode"] == "21610"
    standin.receive_text(CALLER, OUR_NUMBER, "START")
    assert send(client).sid


def test_an_opt_out_through_a_messaging_service_covers_the_service(standin, client):
    params = standin.receive_text(CALLER, DEFAULT_SERVICE_NUMBER, "STOP")

    assert params["MessagingServiceSid"] == DEFAULT_SERVICE_SID and params["To"] == DEFAULT_SERVICE_NUMBER
    error = rest_error(lambda: client.messages.create(to=CALLER, messaging_service_sid=DEFAULT_SERVICE_SID, body="x"))
    assert error.code == 21610
    assert send(client).sid, "an opt-out binds the sender it was sent to, not the whole account"


def test_advanced_opt_out_takes_welsh_keywords_and_says_which_on_the_webhook(standin, client):
    standin.set_opt_out(DEFAULT_SERVICE_SID, advanced=True, stop=["STOP", "DIWEDD", "STOPIO"],
                        replies={"STOP": "No more texts. Dim mwy o negeseuon."})

    params = standin.receive_text(CALLER, DEFAULT_SERVICE_NUMBER, "Diwedd")
    assert params["OptOutType"] == "STOP"
    assert any(m["body"] == "No more texts. Dim mwy o negeseuon." for m in standin.messages.values())
    assert standin.is_opted_out(CALLER, DEFAULT_SERVICE_SID)
    assert standin.receive_text(CALLER, DEFAULT_SERVICE_NUMBER, "HELP")["OptOutType"] == "HELP"


def test_keyword_handling_turned_off_blocks_nothing_and_answers_nothing(standin, client):
    standin.set_opt_out(OUR_NUMBER, handled=False)
    standin.receive_text(CALLER, OUR_NUMBER, "STOP")

    assert [m["direction"] for m in standin.messages.values()] == ["inbound"]
    assert send(client).sid


# -- https://www.twilio.com/docs/api/errors/20009 (wait a minute; up to 14 days) and the Message resource's
# -- statuses (https://www.twilio.com/docs/messaging/api/message-resource): what is final, when it goes --

def test_sent_without_a_receipt_becomes_final_after_a_while(make_standin, recorder):
    standin = make_standin(sent_final_after=0.3)
    client = client_for(standin, http_client=recorder)
    standin.set_outcome(CALLER, "sent")
    message = send(client)
    standin.wait_for_status(message.sid, "sent")

    assert rest_error(lambda: client.messages(message.sid).delete()).code == 20009
    wait_for(lambda: _deleted(client, message.sid), timeout=5, interval=0.05, description="final after the wait")
    assert standin.message(message.sid)["status"] == "sent"


def test_partially_delivered_is_final(standin, client):
    standin.set_outcome(CALLER, "partially_delivered")
    message = send(client)
    standin.wait_for_status(message.sid, "partially_delivered")
    assert client.messages(message.sid).delete() is True


def test_twilio_asks_for_a_wait_before_the_first_delete(make_standin, recorder):
    standin = make_standin(delete_grace=0.3)
    client = client_for(standin, http_client=recorder)
    inbound = standin.add_inbound_message(CALLER, OUR_NUMBER, "hi")

    assert rest_error(lambda: client.messages(inbound).delete()).code == 20009
    wait_for(lambda: _deleted(client, inbound), timeout=5, interval=0.05, description="deletable after the grace")


def _deleted(client, sid: str) -> bool:
    from twilio.base.exceptions import TwilioRestException

    try:
        return client.messages(sid).delete()
    except TwilioRestException as exc:
        assert exc.code == 20009
        return False


# -- https://www.twilio.com/docs/api/errors/21611, /30001, /30036, /90007 (21624): queues and validity ----

def test_a_full_queue_refuses_from_a_number_and_fails_after_creation_through_a_service(standin, client):
    standin.configure(queue_limit=1)
    standin.set_outcome(CALLER, "queued")
    send(client)

    error = rest_error(lambda: send(client))
    assert (error.status, error.code) == (400, 21611)
    through_service = client.messages.create(to="+447400123456", messaging_service_sid=DEFAULT_SERVICE_SID, body="x")
    standin.set_outcome("+447400123457", "queued")
    client.messages.create(to="+447400123457", messaging_service_sid=DEFAULT_SERVICE_SID, body="x")
    overflow = client.messages.create(to="+447400123458", messaging_service_sid=DEFAULT_SERVICE_SID, body="x")
    assert standin.wait_for_status(through_service.sid, "delivered")
    assert standin.wait_for_status(overflow.sid, "failed")["error_code"] == 30001


def test_validity_period_is_checked_and_a_text_still_queued_then_expires(standin, client, sink):
    for bad in ("0", "36001", "ten"):
        assert rest_error(lambda: send(client, validity_period=bad)).code == 21624
    standin.set_outcome(CALLER, "queued")
    message = send(client, validity_period=1, status_callback=sink.url("/status"))

    failed = standin.wait_for_status(message.sid, "failed", timeout=5)
    assert (failed["error_code"], failed["validity_period"]) == (30036, 1)
    wait_for(lambda: sink.statuses(message.sid) == ["failed"], description="the failure is reported")


# -- the account, from Twilio's OpenAPI description: IncomingPhoneNumbers, Account; and Messaging Services
# -- (https://www.twilio.com/docs/messaging/api/service-resource) -------------------------------------

def test_incoming_phone_numbers_are_listed_and_their_webhooks_set(standin, client):
    sid = standin.add_phone_number(HELPLINE_0808, voice_url="https://old.example/voice")

    (number,) = client.incoming_phone_numbers.list(phone_number=HELPLINE_0808)
    assert (number.sid, number.voice_url, number.capabilities["sms"]) == (sid, "https://old.example/voice", False)
    updated = client.incoming_phone_numbers(sid).update(voice_url="https://new.example/voice", voice_method="POST",
                                                       sms_url="https://new.example/sms")
    assert (updated.voice_url, updated.sms_url) == ("https://new.example/voice", "https://new.example/sms")
    assert rest_error(lambda: client.incoming_phone_numbers(sid).update(voice_url="ftp://x")).code == 21502
    assert client.incoming_phone_numbers(sid).fetch().voice_url == "https://new.example/voice"


def test_the_account_says_whether_it_is_a_subaccount(make_standin, recorder):
    main = client_for(make_standin(), http_client=recorder)
    assert main.api.accounts(main.account_sid).fetch().owner_account_sid == main.account_sid
    parent = "AC" + "9" * 32
    sub = client_for(make_standin(owner_account_sid=parent), http_client=recorder)
    assert sub.api.accounts(sub.account_sid).fetch().owner_account_sid == parent


def test_messaging_services_and_their_pool_numbers_are_served(standin):
    client = client_for(standin)   # messaging v1 is not in the 2010-04-01 description the recorder checks
    services = client.messaging.v1.services.list()

    assert [s.sid for s in services] == [DEFAULT_SERVICE_SID]
    assert client.messaging.v1.services(DEFAULT_SERVICE_SID).fetch().validity_period == 36000
    (number,) = client.messaging.v1.services(DEFAULT_SERVICE_SID).phone_numbers.list()
    assert number.phone_number == DEFAULT_SERVICE_NUMBER
