"""`router twilio check` and `router twilio configure` against a stand-in account (IncomingPhoneNumbers,
the Account and Messaging Services, modelled from Twilio's OpenAPI description: tests/twilio_standin).

A correctly set-up account passes; a wrongly set-up one has each fault named with its fix; configure
points the numbers at the deployment, after which check passes.
"""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from router.cli import main
from tests.support import ACCOUNT_SID, FOLLOWUP_SENDER, TOKEN
from tests.twilio_standin import TwilioStandin

BASE = "https://helpline.example.org"
HELPLINE = "+448082000111"
RIGHT = {"voice_url": f"{BASE}/voice", "status_callback": f"{BASE}/voice/status", "sms_url": f"{BASE}/sms",
         "voice_fallback_url": "https://handler.twilio.com/twiml/EH0123"}


@pytest.fixture
def make_account():
    started = []

    def make(**options) -> TwilioStandin:
        standin = TwilioStandin(ACCOUNT_SID, TOKEN, **options).start()
        started.append(standin)
        return standin

    yield make
    for standin in started:
        standin.stop()


def run(standin, *args, **env):
    environment = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_API_BASE_URL": standin.url,
                   "PUBLIC_BASE_URL": BASE, "HELPLINE_NUMBERS": HELPLINE, "FOLLOWUP_SENDER": FOLLOWUP_SENDER,
                   "TWILIO_REGION": "", "TWILIO_EDGE": "", **env}
    return CliRunner().invoke(main, ["twilio", *args], env=environment)


def test_a_correctly_set_up_subaccount_passes(make_account):
    standin = make_account(owner_account_sid="AC" + "9" * 32)
    standin.add_phone_number(HELPLINE, **RIGHT)

    result = run(standin, "check")
    assert result.exit_code == 0, result.output
    assert "[  ok] the account is a subaccount" in result.output
    assert f"[  ok] {HELPLINE}: 'A call comes in' is POST {BASE}/voice" in result.output
    assert "its sender pool has a UK mobile (+447700900001)" in result.output
    assert "Advanced Opt-Out" in result.output and "DIWEDD" in result.output
    assert "ready: nothing to fix" in result.output
    assert all(e["method"] == "GET" for e in standin.request_log), "check only reads"


def test_each_fault_of_a_wrongly_set_up_account_is_named_with_its_fix(make_account):
    standin = make_account()
    standin.add_phone_number(HELPLINE, voice_url="https://old.example/voice", sms_url=f"{BASE}/sms", sms_method="GET")

    result = run(standin, "check", HELPLINE_NUMBERS=f"{HELPLINE},+448082000999", FOLLOWUP_SENDER=HELPLINE)
    out = result.output
    assert result.exit_code == 1
    assert "[warn] the account is a main account" in out and "Subaccounts" in out
    assert f"[FAIL] {HELPLINE}: 'A call comes in' is POST https://old.example/voice, not POST {BASE}/voice" in out
    assert f"[FAIL] {HELPLINE}: 'A message comes in' is GET {BASE}/sms" in out
    assert f"[FAIL] {HELPLINE}: 'Call status changes' is POST (not set)" in out
    assert "fix: run `router twilio configure`" in out
    assert "[FAIL] +448082000999 is not a number of this account" in out
    assert "follow-up texts are not offered" in out and "not a mobile" in out
    assert "no fallback URL for calls" in out


def test_a_service_without_a_uk_mobile_or_with_the_helpline_number_fails(make_account):
    standin = make_account(owner_account_sid="AC" + "9" * 32)
    standin.add_phone_number(HELPLINE, **RIGHT)
    service = standin.add_messaging_service([HELPLINE], use_inbound_webhook_on_number=False,
                                            inbound_request_url="https://elsewhere.example/in")

    out = run(standin, "check", FOLLOWUP_SENDER=service).output
    assert "[FAIL] its sender pool has no UK mobile number" in out
    assert f"[FAIL] the helpline's own number {HELPLINE} is in the sender pool" in out
    assert f"texts to the service go to https://elsewhere.example/in, not {BASE}/sms" in out
    assert "[FAIL] the Messaging Service" in run(standin, "check", FOLLOWUP_SENDER="MG" + "e" * 32).output


def test_configure_points_the_numbers_here_and_then_check_passes(make_account):
    standin = make_account(owner_account_sid="AC" + "9" * 32)
    standin.add_phone_number(HELPLINE, voice_url="https://old.example/voice",
                             voice_fallback_url=RIGHT["voice_fallback_url"])
    assert run(standin, "check").exit_code == 1

    result = run(standin, "configure", "--yes")
    assert result.exit_code == 0, result.output
    number = standin.phone_number(HELPLINE)
    assert (number["voice_url"], number["voice_method"]) == (f"{BASE}/voice", "POST")
    assert (number["status_callback"], number["sms_url"]) == (f"{BASE}/voice/status", f"{BASE}/sms")
    assert run(standin, "check").exit_code == 0
    assert run(standin, "configure", "--yes", HELPLINE_NUMBERS="+448082000999").exit_code == 1
    assert run(standin, "configure", "--yes", PUBLIC_BASE_URL="").exit_code == 2, "needs the https address"


def test_wrong_credentials_say_so_and_print_no_secret(make_account):
    standin = make_account()
    result = run(standin, "check", TWILIO_AUTH_TOKEN="wrong-token-0123")
    assert result.exit_code == 1
    assert "cannot be read (Twilio error 20003)" in result.output and "TWILIO_AUTH_TOKEN" in result.output
    assert "wrong-token-0123" not in result.output
