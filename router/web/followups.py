"""Who follow-up texts come from, who may be offered one, and booking one the person said yes to.

The sender (issue 17): in the UK only a mobile number (+447), a short code, an alphanumeric sender ID
(one-way) or a Messaging Service holding such numbers can send a text; a freephone 0808, geographic or
03 number is refused by Twilio with error 21606 (https://www.twilio.com/docs/api/errors/21606). The
helpline's own number is usually 0808, and it is also the unsafe choice: whoever picks up the phone and
calls it back hears the menu of abuse services. So follow-ups go only from FOLLOWUP_SENDER (or
`sender:` in flows/config.yaml), never from the number called; without a sender that can text, texts are
not offered at all and the person is told the number there and then (`router validate`, `/healthz` and
`router twilio check` say why).

Who may be offered a text: a mobile of an allowed region (FOLLOWUP_COUNTRIES, UK by default), not
withheld (router/definition/phone.py).

Booking: one function for both channels, so a call and a text are told the same thing: the text is
arranged (the engine's confirmation stands), or it cannot be (no sender, this number's daily limit,
Redis down), and then the number is given there and then instead, in words that say nothing of which
service or when. Caller ID is not proof (issue 18): a second ask for a text the same number was already
sent or is due (the same service within 24 hours, router/store/limits.py) is answered exactly as a booking is,
and nothing more is sent; telling it apart would tell whoever fakes the number which service was asked
about.

Texts to the follow-up sender are recognised from the request alone (is_followup_sender), so that
router/web/sms.py answers them discreetly even with Redis down.
"""
from __future__ import annotations

import re
from dataclasses import replace

from router import engine
from router.definition import phone
from router.engine import Step
from router.store.limits import Booking
from router.definition.model import Flows
from router.settings import Settings

MESSAGING_SERVICE = re.compile(r"MG[0-9a-fA-F]{32}")
UK_MOBILE = re.compile(r"\+447(?:[1-57-9]\d{8}|624\d{6})")   # Ofcom: 071-075, 077-079, IoM 07624
SHORT_CODE = re.compile(r"\d{5,6}")
ALPHANUMERIC = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 \-]{1,11}")


def sender_problem(value: str | None) -> str | None:
    """Why `value` cannot send follow-up texts to UK mobiles, or None if it can."""
    value = (value or "").strip()
    if not value:
        return "FOLLOWUP_SENDER is not set"
    if MESSAGING_SERVICE.fullmatch(value) or UK_MOBILE.fullmatch(value) or SHORT_CODE.fullmatch(value):
        return None
    if value.startswith("+44"):
        return (f"FOLLOWUP_SENDER {value} is a UK number that is not a mobile: Twilio refuses texts from it "
                "(error 21606); use a Messaging Service (MG...), a UK mobile number, a short code or an "
                "alphanumeric sender ID")
    if value.startswith("+"):
        return (f"FOLLOWUP_SENDER {value} is not a UK number: UK mobiles may not get texts from it; use a "
                "Messaging Service (MG...), a UK mobile number, a short code or an alphanumeric sender ID")
    if ALPHANUMERIC.fullmatch(value):
        return None
    return f"FOLLOWUP_SENDER {value!r} is neither a Messaging Service SID, a number, a short code nor a sender ID"


def configured_sender(settings: Settings, flows: Flows | None = None) -> str | None:
    """FOLLOWUP_SENDER, else `sender:` in config.yaml; None when neither is set."""
    return settings.followup_sender or (flows.config.sender if flows is not None else None) or None


def sender(settings: Settings, flows: Flows | None, called: str = "") -> str | None:
    """Who follow-ups come from, or None when no sender can send them: none is configured, it cannot
    text in the UK, or it is the helpline's own number (the number called, or one of HELPLINE_NUMBERS)."""
    value = configured_sender(settings, flows)
    if value is None or sender_problem(value) is not None:
        return None
    if value == called or value in settings.helpline_numbers:
        return None
    return value


def why_not_offered(settings: Settings, flows: Flows | None = None) -> str | None:
    """A sentence for operators when follow-up texts are not offered (None when they are)."""
    value = configured_sender(settings, flows)
    problem = sender_problem(value)
    if problem is None and value in settings.helpline_numbers:
        problem = f"FOLLOWUP_SENDER {value} is the helpline's own number"
    if problem is None:
        return None
    return (f"follow-up texts are not offered ({problem}): callers and texters are told the number instead "
            "(docs/deployment.md, 'The sender of follow-up texts')")


def offerable(settings: Settings, flows: Flows, caller: str | None, called: str = "") -> phone.TextableLater:
    """May this caller or texter be offered a text? Only with a sender, and only to a mobile of an allowed
    region; worked out only if a step asks."""
    return phone.TextableLater(caller, settings.followup_countries,
                               enabled=sender(settings, flows, called) is not None)


def is_followup_sender(settings: Settings, form, configured: str = "") -> bool:
    """Is this inbound text addressed to the follow-up sender (FOLLOWUP_SENDER, or `configured`, the flow
    config's `sender`)? Then it answers a follow-up, on a phone anyone may hold (router/web/sms.py).

    Decided from the request alone, never from Redis, so it fails closed: by `MessagingServiceSid` when
    the sender is a Messaging Service (Twilio adds it to inbound texts to a number in the service's
    sender pool, and `To` is then the pool's number), else by `To`. An alphanumeric sender cannot be
    texted at all. https://www.twilio.com/docs/messaging/guides/webhook-request"""
    for neutral in (settings.followup_sender, configured):
        neutral = (neutral or "").strip()
        if not neutral:
            continue
        if neutral.startswith("MG"):
            if form.get("MessagingServiceSid", "") == neutral:
                return True
        elif _same_number(form.get("To", ""), neutral):
            return True
    return False


def _same_number(a: str, b: str) -> bool:
    a, b = "".join(a.split()), "".join(b.split())
    if not a or not b:
        return False
    return a == b or (phone.normalise_sender(a) or a) == (phone.normalise_sender(b) or b)


def arrange(jobs, settings: Settings, ctx: engine.Context, step: Step, *, to: str, called: str,
            trigger: str, callback: str) -> Step:
    """`step` if its follow-up is booked; otherwise the step that says why not (and gives the number)."""
    followup = step.followup
    if followup is None:  # nothing to book: the step stands as it is
        return step
    from_ = sender(settings, ctx.flows, called)
    booking = Booking.FAILED if from_ is None else jobs.schedule_followup(
        to=to, from_=from_, trigger=trigger, followup=followup,
        callback=callback, lang=step.lang, limits=ctx.flows.config.limits)
    if booking or booking is Booking.ALREADY:
        return step
    return engine.followup_not_arranged(replace(ctx, lang=step.lang), followup.service_id)
