"""Who follow-ups come from, and who is offered one (issue 17 items 3 and 10).

In the UK only a mobile number, a short code, an alphanumeric sender ID or a Messaging Service can send
a text (https://www.twilio.com/docs/api/errors/21606); a text abroad is refused outside the account's
geo permissions (https://www.twilio.com/docs/api/errors/21408). So a deployment without a sender that
can text offers no texts (the number is said instead), and texts are offered to UK mobiles only unless
FOLLOWUP_COUNTRIES says otherwise.
"""
from __future__ import annotations

import pytest

from router.web import followups
from tests.conftest import make_settings
from tests.support import HELPLINE_NUMBER, MOBILE, Call

FRENCH_MOBILE = "+33612345678"
JERSEY_MOBILE = "+447797123456"


@pytest.mark.parametrize("value, ok", [
    ("MG" + "ab" * 16, True), ("+447400123456", True), ("60123", True), ("Helpline", True),
    ("+448082000247", False), ("+442071234567", False), ("+443300000111", False), ("+15005550006", False),
    ("", False), ("not valid!", False), ("12345678901234", False),
])
def test_only_a_sender_that_can_text_uk_mobiles_is_accepted(value, ok):
    assert (followups.sender_problem(value) is None) is ok


def test_the_helpline_number_is_never_the_sender_and_validate_says_why():
    settings = make_settings(followup_sender=HELPLINE_NUMBER)
    assert followups.sender(settings, None, "+447400000000") is None
    assert "not a mobile" in followups.why_not_offered(settings)
    mobile_sender = make_settings(followup_sender="+447700900777", helpline_numbers=("+447700900777",))
    assert followups.sender(mobile_sender, None) is None
    assert "helpline's own number" in followups.why_not_offered(mobile_sender)
    assert followups.why_not_offered(make_settings()) is None


def offered_a_text(client, caller: str) -> bool:
    """Through to the 24-hour line, the call ends: is a text offered (press 2 if it is safe)?"""
    call = Call(client, caller=caller).start().press("1")
    call.dial_ends("completed")
    return "safe" in call.text()


def test_without_a_sender_no_text_is_offered_and_the_number_is_said(app_at):
    assert offered_a_text(app_at(), MOBILE)
    client = app_at(followup_sender=None)
    assert not offered_a_text(client, MOBILE)


@pytest.mark.parametrize("caller", [FRENCH_MOBILE, JERSEY_MOBILE])
def test_texts_are_offered_to_uk_mobiles_only_unless_configured(app_at, caller):
    assert not offered_a_text(app_at(), caller)
    assert offered_a_text(app_at(followup_countries=frozenset({"GB", "FR", "JE"})), caller)


def test_healthz_says_why_texts_are_not_offered(app_at):
    """To operators (the details behind the metrics token, as /healthz gives them)."""
    from tests.support import METRICS_AUTH

    assert "followups" not in app_at().get("/healthz", headers=METRICS_AUTH).get_json()
    client = app_at(followup_sender=None)
    assert "FOLLOWUP_SENDER is not set" in client.get("/healthz", headers=METRICS_AUTH).get_json()["followups"]
    assert "followups" not in client.get("/healthz").get_json(), "the public answer stays minimal"


def test_router_validate_says_when_texts_are_not_offered(monkeypatch):
    from click.testing import CliRunner

    from router.cli import main
    from tests.conftest import FLOWS

    monkeypatch.delenv("FOLLOWUP_SENDER", raising=False)
    result = CliRunner().invoke(main, ["validate", str(FLOWS)])
    assert result.exit_code == 0, result.output
    assert "follow-up texts are not offered (FOLLOWUP_SENDER is not set)" in result.output
    monkeypatch.setenv("FOLLOWUP_SENDER", "MG" + "ab" * 16)
    assert "not offered" not in CliRunner().invoke(main, ["validate", str(FLOWS)]).output
