"""What Twilio refuses, or does by itself, on an ordinary UK account: as small pure rules the stand-in applies.

Each rule cites the Twilio page it follows. Where a page gives no detail (an exact text, a format), the
choice is marked "not verified". The app must cope with every one of these; a stand-in that accepted what
Twilio refuses would hide the bug (docs/deployment.md "Before go-live on a real number").

* Who can send a text in the UK (https://www.twilio.com/docs/api/errors/21606, the UK SMS guidelines
  https://www.twilio.com/guidelines/gb/sms): a UK mobile number (+447, not 070 personal numbers or 076
  pagers, Isle of Man 07624 included), a short code (to its own country only) or an alphanumeric sender
  ID (one-way; 1-11 letters, digits, spaces or hyphens, not only digits:
  https://support.twilio.com/hc/en-us/articles/223181348). A UK freephone (0808), geographic (01/02)
  or 03 number cannot: 400 / 21606.
* Message Redaction (https://www.twilio.com/docs/api/errors/30029, .../30030): ``ContentRetention`` /
  ``AddressRetention`` are refused with 30029 / 30030 unless Message Redaction is enabled on the account
  (Twilio does that on request), and always for a value other than retain/discard, retain/obfuscate.
* Geo permissions (https://www.twilio.com/docs/api/errors/21408): a text to a country the account has
  not enabled is refused with 400 / 21408.
* ValidityPeriod (https://www.twilio.com/docs/api/errors/90007 and the older 21624): whole seconds,
  1 to 36000; a message still in Twilio's queue when it runs out fails with 30036
  (https://www.twilio.com/docs/api/errors/30036).
* Queues (https://www.twilio.com/docs/api/errors/21611): a sender whose queue is full refuses new
  messages with 21611 (not final: retry later); through a Messaging Service the message is created and
  then fails with 30001 instead (https://www.twilio.com/docs/api/errors/30001).
* Opt-out keywords (https://help.twilio.com/hc/en-us/articles/223134027, and the Advanced Opt-Out
  tutorial https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out): on long codes and
  Messaging Services Twilio answers STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT, REVOKE itself,
  then refuses every later message from that sender (or that Messaging Service) to that phone with 21610,
  TwiML replies included, until START, UNSTOP or YES; HELP and INFO get its help text. With Advanced
  Opt-Out the keywords and the replies are the service's own, and the inbound webhook carries
  ``OptOutType`` (STOP, START or HELP). A short code's handling can be turned off.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import phonenumbers

UK_MOBILE = re.compile(r"^\+447(?:[1-57-9]\d{8}|624\d{6})$")
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 \-]{1,11}$")
SHORT_CODE = re.compile(r"^\d{5,6}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

CONTENT_RETENTION = frozenset({"retain", "discard"})
ADDRESS_RETENTION = frozenset({"retain", "obfuscate"})
MAX_VALIDITY_SECONDS = 36000

DEFAULT_STOP = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
DEFAULT_START = frozenset({"START", "UNSTOP", "YES"})
DEFAULT_HELP = frozenset({"HELP", "INFO"})
# Twilio's default answers (support article 223134027); the exact wording is Twilio's to change.
DEFAULT_REPLIES = {
    "STOP": "You have successfully been unsubscribed. You will not receive any more messages from this "
            "number. Reply START to resubscribe.",
    "START": "You have successfully been re-subscribed to messages from this number. Reply HELP for help. "
             "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    "HELP": "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
}


class Refusal(Exception):
    """A rule refused a request: HTTP status, Twilio error code, message (server.py makes it a TwilioError)."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def country_of(number: str) -> str | None:
    """ISO region of an E.164 number; for a number phonenumbers does not know (Ofcom's drama ranges), the
    main region of its country code."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(parsed) or \
        phonenumbers.region_code_for_country_code(parsed.country_code)


def check_sender(from_: str, to: str) -> None:
    """Refuse a From that cannot send a text to `to` (error 21606), or that is not a sender at all (21212)."""
    if SHORT_CODE.match(from_):
        if country_of(to) != "GB":
            raise Refusal(400, 21606, f"The 'From' phone number provided ({from_}) is not a valid message-"
                                      "capable Twilio phone number for this destination.")
        return
    if E164.match(from_):
        if from_.startswith("+44") and not UK_MOBILE.match(from_):
            raise Refusal(400, 21606, f"The 'From' phone number provided ({from_}) is not a valid message-"
                                      "capable Twilio phone number for this destination.")
        return
    if not ALPHANUMERIC_SENDER.match(from_):
        raise Refusal(400, 21212, f"The 'From' number {from_} is not a valid phone number, shortcode, or "
                                  "alphanumeric sender ID.")


def check_retention(form: dict, redaction_enabled: bool) -> None:
    """ContentRetention / AddressRetention need Message Redaction on the account (30029 / 30030)."""
    for name, allowed, code in (("ContentRetention", CONTENT_RETENTION, 30029),
                                ("AddressRetention", ADDRESS_RETENTION, 30030)):
        if name in form and (not redaction_enabled or form[name] not in allowed):
            raise Refusal(400, code, f"Invalid {name}")


def check_country(to: str, countries: frozenset[str]) -> None:
    if country_of(to) not in countries:
        raise Refusal(400, 21408, f"Permission to send an SMS has not been enabled for the region indicated "
                                  f"by the 'To' number: {to}")


def validity_seconds(value: str | None) -> int | None:
    """ValidityPeriod as whole seconds, 1..36000 (error 21624 otherwise)."""
    if value is None:
        return None
    if not value.isdecimal() or not 1 <= int(value) <= MAX_VALIDITY_SECONDS:
        raise Refusal(400, 21624, "Invalid validity period value")
    return int(value)


def obfuscate(number: str) -> str:
    """An address after AddressRetention=obfuscate. Not verified: Twilio's pages say the number is
    redacted, not how; the stand-in keeps the country code and hides the rest."""
    return number[:3] + "X" * max(len(number) - 3, 0) if number.startswith("+") else "X" * len(number)


@dataclass
class OptOut:
    """How Twilio handles opt-out keywords for one sender (a number, or a Messaging Service and its pool).

    handled=False: Twilio leaves keywords alone (possible for a short code). advanced=True: Advanced
    Opt-Out, with the service's own keywords and replies, and OptOutType on the inbound webhook."""

    handled: bool = True
    advanced: bool = False
    stop: frozenset[str] = DEFAULT_STOP
    start: frozenset[str] = DEFAULT_START
    help: frozenset[str] = DEFAULT_HELP
    replies: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_REPLIES))

    def kind(self, body: str | None) -> str | None:
        """STOP, START or HELP for a whole-body keyword (trimmed, any case); None otherwise."""
        if not self.handled:
            return None
        word = (body or "").strip().upper()
        for kind, words in (("STOP", self.stop), ("START", self.start), ("HELP", self.help)):
            if word in words:
                return kind
        return None
