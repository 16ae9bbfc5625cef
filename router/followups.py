"""Book a follow-up the person said yes to, from the configured sender, and tell them what became of it.

One function for both channels, so a call and a text are told the same thing: the text is arranged
(the engine's confirmation stands), or it cannot be (this number's daily limit, Redis down), and then
the number is given there and then instead, in words that say nothing of which service or when.

Caller ID is not proof (issue 18): a second ask for a text the same number was already sent or is due
(the same service within 24 hours, router/limits.py) is answered exactly as a booking is, and nothing
more is sent; telling it apart would tell whoever fakes the number which service the person asked about.
"""
from __future__ import annotations

from dataclasses import replace

from router import engine, phone
from router.engine import Step
from router.limits import Booking
from router.model import Flows
from router.settings import Settings


def sender(settings: Settings, flows: Flows, called: str) -> str:
    """Who the text comes from: FOLLOWUP_SENDER, else config.yaml's `sender`, else the number called.
    A Messaging Service SID (MG...) or a separate number keeps the helpline's own number off the
    person's phone (docs/deployment.md)."""
    return settings.followup_sender or flows.config.sender or called


def is_followup_sender(settings: Settings, form, configured: str = "") -> bool:
    """Is this inbound text addressed to the follow-up sender (FOLLOWUP_SENDER, or `configured`, the flow
    config's `sender`)? Then it answers a follow-up, on a phone anyone may hold (router/sms.py).

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
    booking = jobs.schedule_followup(
        to=to, from_=sender(settings, ctx.flows, called), trigger=trigger, followup=followup,
        callback=callback, lang=step.lang, limits=ctx.flows.config.limits)
    if booking or booking is Booking.ALREADY:
        return step
    return engine.followup_not_arranged(replace(ctx, lang=step.lang), followup.service_id)
