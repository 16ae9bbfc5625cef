"""Book a follow-up the person said yes to, from the configured sender, and tell them what became of it.

One function for both channels, so a call and a text are told the same thing: the text is arranged
(the engine's confirmation stands), it is already on its way (the same service to the same number in
the last 24 hours: router/limits.py), or it cannot be arranged (a limit, Redis down), and then the
number is given there and then instead.
"""
from __future__ import annotations

from dataclasses import replace

from router import engine
from router.engine import Step
from router.limits import Booking
from router.model import Flows
from router.settings import Settings


def sender(settings: Settings, flows: Flows, called: str) -> str:
    """Who the text comes from: FOLLOWUP_SENDER, else config.yaml's `sender`, else the number called.
    A Messaging Service SID (MG...) or a separate number keeps the helpline's own number off the
    person's phone (docs/deployment.md)."""
    return settings.followup_sender or flows.config.sender or called


def arrange(jobs, settings: Settings, ctx: engine.Context, step: Step, *, to: str, called: str,
            trigger: str, callback: str) -> Step:
    """`step` if its follow-up is booked; otherwise the step that says why not (and gives the number)."""
    followup = step.followup
    booking = jobs.schedule_followup(
        to=to, from_=sender(settings, ctx.flows, called), trigger=trigger, followup=followup,
        callback=callback, lang=step.lang, limits=ctx.flows.config.limits)
    if booking:
        return step
    ctx = replace(ctx, lang=step.lang)
    if booking is Booking.ALREADY:
        return engine.followup_already(ctx, followup.service_id)
    return engine.followup_not_arranged(ctx, followup.service_id)
