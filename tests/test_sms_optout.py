"""Twilio's own opt-out as the stand-in plays it (error 21610), the limits' decisions, and the sender.

The stand-in must be faithful for tests/test_texts_e2e.py to mean anything: a whole-body STOP keyword
opts the texter out of that number only; START opts back in; a refused create is 400 with code 21610.
"""
from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from router.web.followups import sender
from router.store.limits import Booking, Reply, reply_level
from router.definition.model import Limits
from tests.conftest import FLOWS, make_settings
from tests.support import ACCOUNT_SID, TOKEN
from tests.twilio_standin import TwilioStandin, client_for

PERSON, OURS, OTHER = "+447400123456", "+447700900111", "+447700900999"  # only UK mobiles send texts (21606)


@pytest.fixture
def standin():
    server = TwilioStandin(account_sid=ACCOUNT_SID, auth_token=TOKEN, auto_advance=False).start()
    server.add_phone_number(OURS)
    server.add_phone_number(OTHER)
    yield server
    server.stop()


def send(standin, from_=OURS):
    return client_for(standin).messages.create(to=PERSON, from_=from_, body="The number: 0808 2000 247")


@pytest.mark.parametrize("keyword", ["STOP", "stop", " Stop ", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
                                     "OPTOUT", "REVOKE"])
def test_a_stop_keyword_to_our_number_makes_twilio_refuse_texts_from_it_with_21610(standin, keyword):
    standin.add_inbound_message(PERSON, OURS, keyword)
    with pytest.raises(TwilioRestException) as refused:
        send(standin)
    assert (refused.value.status, refused.value.code) == (400, 21610)
    assert standin.sent_messages() == []
    assert send(standin, from_=OTHER).sid, "an opt-out is per sender: another number still may"


@pytest.mark.parametrize("body", ["STOP please", "stop texting me", "hello"])
def test_only_a_whole_body_keyword_is_twilios_opt_out(standin, body):
    standin.add_inbound_message(PERSON, OURS, body)
    assert send(standin).sid


def test_start_opts_back_in(standin):
    standin.add_inbound_message(PERSON, OURS, "STOP")
    standin.add_inbound_message(PERSON, OURS, "START")
    assert send(standin).sid
    assert standin.state()["opted_out"] == []


LIMITS = Limits(replies_per_sender=5, advice_replies_per_sender=2, replies_per_minute=50)


@pytest.mark.parametrize("sender_count, global_count, level", [
    (0, 0, Reply.FULL), (1, 1, Reply.FULL), (5, 50, Reply.FULL), (6, 1, Reply.ADVICE), (7, 1, Reply.ADVICE),
    (8, 1, Reply.SILENT), (100, 100, Reply.SILENT), (1, 51, Reply.ADVICE),
])
def test_reply_level_full_then_999_only_then_silence(sender_count, global_count, level):
    assert reply_level(LIMITS, sender_count, global_count) is level


def test_only_a_kept_booking_is_true():
    assert [bool(b) for b in Booking] == [b is Booking.KEPT for b in Booking]


def test_the_sender_is_the_environment_then_config_and_never_the_number_called():
    from router.definition.flowfile import load_flows

    flows = load_flows(FLOWS, lint=False)
    configured = flows.__class__(**{**{f: getattr(flows, f) for f in
                                       ("services", "start", "nodes", "phrases", "version")},
                                    "config": flows.config.model_copy(update={"sender": OTHER})})
    assert sender(make_settings(followup_sender=None), flows, OURS) is None, "no fallback to the number called"
    assert sender(make_settings(followup_sender=None), configured, OURS) == OTHER
    assert sender(make_settings(followup_sender=None), configured, OTHER) is None, "never the number called"
    mg = "MG" + "ab" * 16
    assert sender(make_settings(followup_sender=mg), configured, OURS) == mg


def test_a_sender_that_is_neither_a_number_nor_a_messaging_service_is_refused():
    from pydantic import ValidationError

    from router.definition.model import Config

    base = dict(languages=["en"], default_language="en", voices={"en": {"voice": "x", "language": "en-GB"}},
                emergency_service="x")
    assert Config(**base, sender="MG" + "0" * 32).sender
    with pytest.raises(ValidationError):
        Config(**base, sender="Helpline")


def test_a_limit_is_counted_every_time_but_logged_once_a_window_and_never_with_the_number(caplog):
    from router.metrics import REGISTRY

    def counted() -> float:
        return REGISTRY.get_sample_value("helpline_limits_total", {"limit": "reply_sender_silenced"})

    before = counted()
    with caplog.at_level("WARNING", logger="router.store.limits"):
        for count in range(8, 20):
            reply_level(LIMITS_FOR_LOGS, count, 1)
    assert counted() == before + 12
    assert [r.getMessage() for r in caplog.records] == ["limit reached: reply_sender_silenced"]


LIMITS_FOR_LOGS = Limits(replies_per_sender=5, advice_replies_per_sender=2)


def test_a_crowd_of_faked_numbers_over_the_global_cap_delays_a_real_callers_text_never_refuses_it(redis_url):
    """61 made-up caller IDs used to use up the 60-a-minute cap, and a real caller was refused (issue 18)."""
    from datetime import datetime, timezone

    import redis as redis_lib

    from router.store.limits import FollowupLimits

    limits = FollowupLimits(redis_lib.Redis.from_url(redis_url, decode_responses=True), b"s" * 32)
    cap = Limits(followups_per_minute=60)
    now = datetime.now(timezone.utc)
    crowd = [limits.reserve(f"{i:032x}", f"+4474001{i:05d}", "galop", cap, send_at=now) for i in range(61)]
    assert all(crowd) and [r.delay_minutes for r in crowd].count(0) == 60
    real = limits.reserve("f" * 32, PERSON, "galop", cap, send_at=now)
    assert real.booking is Booking.KEPT and real.delay_minutes == 1, real
