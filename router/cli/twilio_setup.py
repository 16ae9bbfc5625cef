"""The real Twilio account, checked before go-live (`router twilio check`) and its numbers pointed at this
deployment (`router twilio configure`).

Why: everything else is tested against a stand-in; this is where a deployment learns that its account is
set up the way the app needs, item by item, with the fix for each failure, before a caller finds out.
`check` only reads (GET); `configure` sets the helpline numbers' webhooks, as Twilio's own CLI does
(`twilio phone-numbers:update`). Both use the REST resources in Twilio's OpenAPI description:
IncomingPhoneNumbers and the Account (api.twilio.com/2010-04-01) and Messaging Services
(messaging.twilio.com/v1).

What cannot be read through the API is said so, with where to look in the Console: whether Message
Redaction is enabled (Twilio enables it on request; without it every follow-up sent with retention
parameters is refused, errors 30029/30030) and how Advanced Opt-Out is set on a Messaging Service.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from twilio.base.exceptions import TwilioException, TwilioRestException

from router.web import followups
from router.settings import Settings

OK, FAIL, WARN, INFO = "ok", "FAIL", "warn", "info"
MESSAGING_SERVICE = re.compile(r"MG[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class Item:
    """One line of the checklist: what was checked, what was found, and how to fix it if it failed."""

    state: str   # OK, FAIL, WARN or INFO
    what: str
    fix: str = ""

    def lines(self) -> list[str]:
        head = f"[{self.state:>4}] {self.what}"
        return [head] + ([f"       fix: {self.fix}"] if self.fix and self.state in (FAIL, WARN) else [])


def webhooks(base: str) -> dict[str, str]:
    """The helpline number's settings this deployment needs (README, docs/deployment.md)."""
    return {"voice_url": f"{base}/voice", "voice_method": "POST",
            "status_callback": f"{base}/voice/status", "status_callback_method": "POST",
            "sms_url": f"{base}/sms", "sms_method": "POST"}


FIELD_NAMES = {"voice_url": "A call comes in", "status_callback": "Call status changes",
               "sms_url": "A message comes in"}


def check(client, settings: Settings) -> list[Item]:
    """The whole checklist, read-only. An Item per check; FAIL items make `router twilio check` exit 1."""
    items: list[Item] = []
    try:
        account = client.api.accounts(settings.account_sid).fetch()
    except TwilioRestException as exc:
        return [Item(FAIL, f"the account {settings.account_sid} cannot be read (Twilio error {exc.code})",
                     "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (Console > Account > API keys & tokens)")]
    except TwilioException as exc:
        return [Item(FAIL, f"Twilio's API did not answer ({type(exc).__name__})", "check the network and "
                     "TWILIO_API_BASE_URL")]
    items.append(_subaccount(account))
    base = settings.public_base_url
    if not base:
        items.append(Item(FAIL, "PUBLIC_BASE_URL is not set: the webhooks cannot be compared",
                          "set PUBLIC_BASE_URL to the https:// address Twilio is to call"))
    elif not base.startswith("https://"):
        items.append(Item(FAIL, f"PUBLIC_BASE_URL {base} is not https", "Twilio must call the app over HTTPS "
                          "with a certificate from a public CA (docs/deployment.md, TLS)"))
    if not settings.helpline_numbers:
        items.append(Item(FAIL, "HELPLINE_NUMBERS is not set", "set HELPLINE_NUMBERS to the helpline's number(s) "
                          "in E.164, e.g. +448082000000; the history sweep deletes nothing without it"))
    for number in settings.helpline_numbers:
        items += _number(client, number, base)
    items += _sender(client, settings, base)
    items.append(_redaction(settings))
    return items


def _subaccount(account) -> Item:
    if account.owner_account_sid and account.owner_account_sid != account.sid:
        return Item(OK, "the account is a subaccount (its records, Monitor logs and opt-outs are the helpline's "
                        "alone)")
    return Item(WARN, "the account is a main account, not a subaccount",
                "create a subaccount for the helpline (Console > Admin > Subaccounts) and move its numbers "
                "there: then nothing else's records share its logs, its sweep or its opt-out list")


def _number(client, number: str, base: str | None) -> list[Item]:
    try:
        found = client.incoming_phone_numbers.list(phone_number=number, limit=2)
    except TwilioRestException as exc:
        return [Item(FAIL, f"{number}: the account's numbers cannot be listed (Twilio error {exc.code})",
                     "check the credentials' permissions")]
    if not found:
        return [Item(FAIL, f"{number} is not a number of this account",
                     "buy or port it into this account (or a subaccount), or correct HELPLINE_NUMBERS")]
    record = found[0]
    items = [Item(OK, f"{number} is in the account")]
    texts = bool((record.capabilities or {}).get("sms"))
    if not texts:
        items.append(Item(INFO, f"{number} cannot receive texts (no SMS capability, as for UK 0808 and "
                                "geographic numbers): the text menu is reached on a number that can, if any"))
    if not base:
        return items
    for name, wanted in webhooks(base).items():
        if name.endswith("_method") or (name == "sms_url" and not texts and not getattr(record, name, None)):
            continue
        method = name.replace("_url", "") + "_method" if name.endswith("_url") else name + "_method"
        got, got_method = getattr(record, name, None) or "", (getattr(record, method, None) or "").upper()
        label = FIELD_NAMES[name]
        if got == wanted and got_method == "POST":
            items.append(Item(OK, f"{number}: '{label}' is POST {wanted}"))
        else:
            items.append(Item(FAIL, f"{number}: '{label}' is {got_method or '?'} {got or '(not set)'}, not POST {wanted}",
                              "run `router twilio configure`, or set it in the Console (Phone Numbers > "
                              f"Manage > Active numbers > {number})"))
    if not (record.voice_fallback_url or ""):
        items.append(Item(WARN, f"{number}: no fallback URL for calls", "point 'Primary handler fails' at a "
                          "TwiML Bin with the 999 advice and a <Dial> to the 24-hour helpline "
                          "(docs/deployment.md, The Twilio number)"))
    return items


def _sender(client, settings: Settings, base: str | None) -> list[Item]:
    value = followups.configured_sender(settings)
    why = followups.why_not_offered(settings)
    if why or value is None:  # no sender configured: why_not_offered says so
        return [Item(FAIL, why or "no follow-up sender is set", "set FOLLOWUP_SENDER to a Messaging Service SID (MG...) holding a UK mobile "
                     "number, a UK mobile number, a short code or an alphanumeric sender ID (docs/deployment.md)")]
    if MESSAGING_SERVICE.fullmatch(value):
        return _service(client, value, settings, base)
    if value.startswith("+"):
        try:
            found = client.incoming_phone_numbers.list(phone_number=value, limit=2)
        except TwilioRestException as exc:
            return [Item(FAIL, f"the follow-up sender {value}: the account's numbers cannot be listed "
                               f"(Twilio error {exc.code})", "check the credentials' permissions")]
        if not found:
            return [Item(FAIL, f"the follow-up sender {value} is not a number of this account",
                         "use a number the account owns (Twilio refuses others: error 21606)")]
        if not (found[0].capabilities or {}).get("sms"):
            return [Item(FAIL, f"the follow-up sender {value} cannot send texts", "use an SMS-capable UK mobile")]
        return [Item(OK, f"follow-ups come from {value}, a UK mobile of this account")]
    return [Item(WARN, f"follow-ups come from '{value}', which cannot be replied to",
                 "people cannot text STOP or MENU back to a sender ID or, often, a short code: the app's own "
                 "stop handling still works on the helpline number")]


def _service(client, sid: str, settings: Settings, base: str | None) -> list[Item]:
    try:
        service = client.messaging.v1.services(sid).fetch()
        pool = client.messaging.v1.services(sid).phone_numbers.list()
    except TwilioRestException as exc:
        return [Item(FAIL, f"the Messaging Service {sid} cannot be read (Twilio error {exc.code})",
                     "check FOLLOWUP_SENDER: the service must exist in this account (error 21701 otherwise)")]
    items = [Item(OK, f"the Messaging Service {sid} ('{service.friendly_name}') exists")]
    mobiles = [n.phone_number for n in pool if followups.UK_MOBILE.fullmatch(n.phone_number or "")]
    if mobiles:
        items.append(Item(OK, f"its sender pool has a UK mobile ({', '.join(mobiles)})"))
    else:
        items.append(Item(FAIL, "its sender pool has no UK mobile number: texts to UK mobiles are refused (21606)",
                          "add a UK mobile number to the service (Messaging > Services > Sender Pool)"))
    helpline = [n.phone_number for n in pool if n.phone_number in settings.helpline_numbers]
    if helpline:
        items.append(Item(FAIL, f"the helpline's own number {', '.join(helpline)} is in the sender pool",
                          "remove it: a follow-up must never show the helpline's number on the person's phone"))
    wanted = f"{base}/sms" if base else None
    if not service.use_inbound_webhook_on_number and wanted and service.inbound_request_url != wanted:
        items.append(Item(FAIL, f"texts to the service go to {service.inbound_request_url or '(nowhere)'}, "
                                f"not {wanted}",
                          "Messaging > Services > Integration: 'Send a webhook' to POST "
                          f"{wanted}, so replies to a follow-up are answered (discreetly)"))
    if settings.message_redaction and service.fallback_to_long_code:
        items.append(Item(FAIL, "Fallback to Long Code is on, which Phone Number Redaction does not allow "
                                "(Twilio warning 23005)", "turn Fallback to Long Code off on the service"))
    if service.validity_period and service.validity_period < settings.followup_validity_seconds:
        items.append(Item(INFO, f"the service's validity period ({service.validity_period} s) is shorter than "
                                f"FOLLOWUP_VALIDITY_SECONDS ({settings.followup_validity_seconds} s)"))
    items.append(Item(WARN, "how the service's opt-out is set cannot be read through Twilio's API",
                      "Console > Messaging > Services > this service > Opt-out management: turn on Advanced "
                      "Opt-Out, add DIWEDD and STOPIO to the opt-out keywords and DECHRAU to the opt-in ones, "
                      "and write the confirmation in English and Welsh (docs/deployment.md, Opt-out)"))
    return items


def _redaction(settings: Settings) -> Item:
    if settings.message_redaction:
        return Item(WARN, "TWILIO_MESSAGE_REDACTION is on: Twilio's API cannot say whether Message Redaction is "
                          "enabled on the account",
                    "confirm it with Twilio support: without it every follow-up is refused (errors 30029/30030)")
    return Item(INFO, "Message Redaction is not used (TWILIO_MESSAGE_REDACTION off): texts and numbers stay at "
                      "Twilio until the app deletes each message")


def configure(client, settings: Settings, base: str) -> list[str]:
    """Point each of HELPLINE_NUMBERS at this deployment's /voice, /voice/status and /sms (POST). Returns
    one line per number saying what was set; raises LookupError for a number not in the account."""
    done = []
    for number in settings.helpline_numbers:
        found = client.incoming_phone_numbers.list(phone_number=number, limit=2)
        if not found:
            raise LookupError(f"{number} is not a number of this account")
        client.incoming_phone_numbers(found[0].sid).update(**webhooks(base))
        done.append(f"{number}: calls to POST {base}/voice, call status to POST {base}/voice/status, "
                    f"texts to POST {base}/sms")
    return done
