"""Booking a text for later: when it is sent, what it says, and what the person is told on booking it.

Why a module of its own: a text to a phone someone else may read is the riskiest thing the router
does, so its rules are in one place to review: sent only after an explicit yes, its body names a
service only where the flows allow it, and a caller hears twice (where no key can cut it off) what
they booked and how to cancel it. Pure: the channels arrange the text (router/web/followups.py).
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from router.definition import hours as hours_mod
from router.definition.model import Service
from router.engine import wording
from router.engine.context import SMS, VOICE, Context, Followup, Line, Step
from router.engine.keypad import VOICE_CANCEL_KEY, cancel_key_free
from router.engine.wording import describe_hours


def schedule_followup(ctx: Context, service: Service, when: str) -> Step:
    send_at = followup_time(ctx, when)
    name_part = ctx.flows.phrase("followup_name", ctx.lang, name=wording.name(ctx, service)) \
        if service.name_in_followup else ""
    body = ctx.flows.phrase("followup_text", ctx.lang, name=name_part, number=service.number,
                            hours=describe_hours(replace(ctx, channel=SMS), service))
    phrase = f"followup_confirm_{when}"
    if ctx.channel == VOICE and (when == "now" or cancel_key_free(ctx.flows)):
        phrase = f"voice_{phrase}"  # cancel by calling again and a key: a text would leave a trace
    lines: tuple[Line, ...] = (ctx.say(phrase, morning=morning(ctx), key=VOICE_CANCEL_KEY),)
    if ctx.channel == VOICE:
        # Said twice before the call ends, where no key can cut it off (a hang-up step has no Gather):
        # someone who typed 2, 2, 2 ahead booked a text without hearing the question (issue 19).
        lines = lines * 2 + ((ctx.say("quiet_goodbye"),) if phrase.startswith("voice_") else ())
    return Step(at=None, lang=ctx.lang, hangup=True, lines=lines,
                followup=Followup(service.id, when, send_at, " ".join(body.split())),
                events=(("followup_scheduled", when),))


def followup_not_arranged(ctx: Context, service_id: str) -> Step:
    """The text could not be arranged (this number's daily limit, Redis down): say so, and give the
    number now instead; the same words for every reason, naming no earlier text (issue 18)."""
    service = ctx.flows.services[service_id]
    return Step(at=None, lang=ctx.lang, hangup=True, events=(("followup_failed", ctx.channel),),
                lines=(ctx.say("followup_unavailable", name=wording.said(ctx, service),
                                number=wording.number(ctx, service)),))


def followup_time(ctx: Context, when: str) -> datetime:
    """now -> now; later -> in about `later_minutes`; morning -> the next `morning` time in London."""
    cfg = ctx.flows.config.followup
    if when == "now":
        return ctx.now
    if when == "later":
        return ctx.now + timedelta(minutes=cfg.later_minutes)
    hour, minute = (int(part) for part in cfg.morning.split(":"))
    local = ctx.now.astimezone(hours_mod.LONDON)
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= local:
        target = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return target


def morning(ctx: Context) -> str:
    """'at 9am tomorrow', or 'at 9am today' when it is 03:00: the actual time a morning text is sent."""
    send_at = followup_time(ctx, "morning")
    today = ctx.now.astimezone(hours_mod.LONDON).date()
    day = "day_today" if send_at.date() == today else "day_tomorrow"
    return ctx.flows.phrase("followup_morning", ctx.lang,
                            time=wording.clock(ctx, send_at.hour * 60 + send_at.minute),
                            day=ctx.flows.phrase(day, ctx.lang))
