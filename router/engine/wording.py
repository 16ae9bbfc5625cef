"""How hours, times and names are said on a call and written in a text, in the person's language.

Why a module of its own: these are the sentences a person hears or reads, and most of what a Welsh
speaker or a safeguarding lead reviews ("Monday and Tuesday", "weekends", "24 hours", "i ddydd Gwener",
"9 y bore", "the Men's Advice Line" but "Childline"). Pure functions of the flows and a context (the
engine's Context: flows, channel, lang, now); nothing here decides where a person goes next. What a
filled-in phrase needs as a sentence (Welsh mutations, a closing comma) is router/engine/grammar.py's.
"""
from __future__ import annotations

from datetime import timedelta

from router.definition import hours as hours_mod
from router.definition import phone
from router.definition.model import Service
from router.engine.context import SMS, VOICE, Context

__all__ = ["SMS", "VOICE", "clock", "day_names", "describe_hours", "name", "number", "opens_next", "said"]


def describe_hours(ctx: Context, service: Service) -> str:
    """'Monday to Friday, 10am to 8pm' (voice) or 'Mon-Fri 10am-8pm' (text), in the person's language.

    Said as a person would say it: two days are 'Monday and Tuesday', Saturday and Sunday are 'weekends',
    a whole day is '24 hours', and in Welsh the day after 'i' takes its mutation ('i ddydd Gwener')."""
    schedule = service.schedule
    if schedule.always:
        return ctx.flows.phrase("hours_always", ctx.lang)
    style = "long" if ctx.channel == VOICE else "short"
    names: dict[str, str] = dict(zip(hours_mod.DAYS, day_names(ctx, f"days_{style}")))
    names_after_to: dict[str, str] = dict(zip(hours_mod.DAYS, day_names(ctx, f"days_{style}_to")))
    parts = []
    for first, last, spans in schedule.weekly_groups():
        if (first, last) == ("sat", "sun") and style == "long":
            days = ctx.flows.phrase("weekends_long", ctx.lang)
        elif first == last:
            days = names[first] + ("," if style == "long" else "")
        elif style == "long" and hours_mod.DAYS.index(last) - hours_mod.DAYS.index(first) == 1:
            days = ctx.flows.phrase("day_pair_long", ctx.lang, first=names[first], last=names[last])
        else:
            days = ctx.flows.phrase(f"day_range_{style}", ctx.lang, first=names[first], last=names_after_to[last])
        if spans == ((0, 24 * 60),):
            times = ctx.flows.phrase(f"all_day_{style}", ctx.lang)
        else:
            times = " & ".join(ctx.flows.phrase(f"time_range_{style}", ctx.lang, start=clock(ctx, s),
                                                end=clock(ctx, e)) for s, e in spans)
        parts.append(f"{days} {times}")
    text = "; ".join(parts)
    if not schedule.open_on_bank_holidays:
        text += ctx.flows.phrase(f"closed_bank_holidays_{style}", ctx.lang)
    return text


def day_names(ctx: Context, phrase_id: str) -> list[str]:
    if phrase_id not in ctx.flows.phrases:  # e.g. days_long_to: only languages that mutate need it
        phrase_id = phrase_id.removesuffix("_to")
    return [name.strip() for name in ctx.flows.phrase(phrase_id, ctx.lang).split(",")]


def clock(ctx: Context, minute: int) -> str:
    """A time of day as said (voice: '9am'; in Welsh '9 y bore', '5 y prynhawn', '8 yr hwyr') or written."""
    if minute % (24 * 60) == 0:
        return ctx.flows.phrase("clock_midnight", ctx.lang)
    hour, mins = divmod(minute, 60)
    time = f"{hour % 12 or 12}{'.%02d' % mins if mins else ''}"
    if ctx.channel == VOICE and "clock_evening" in ctx.flows.phrases:
        part = "clock_morning" if hour < 12 else "clock_afternoon" if hour < 18 else "clock_evening"
        return ctx.flows.phrase(part, ctx.lang, time=time)
    return time + ctx.flows.phrase("clock_am" if hour < 12 else "clock_pm", ctx.lang)


def opens_next(ctx: Context, service: Service, *, short: bool = False) -> str:
    """When a closed service next opens: 'It opens on Tuesday at 10am' (said; Welsh 'on Tuesday' mutates
    as after 'i': 'ddydd Mawrth'), or for a small screen 'Tue 10am' (short: the sms_opens_* phrases)."""
    nxt = service.schedule.next_opening(ctx.now, ctx.region)
    if nxt is None:
        return ""
    prefix = "sms_opens" if short else "opens"
    today = ctx.now.astimezone(hours_mod.LONDON).date()
    time = clock(ctx, nxt.hour * 60 + nxt.minute)
    if nxt.date() == today:
        return ctx.flows.phrase(f"{prefix}_today", ctx.lang, time=time)
    if nxt.date() == today + timedelta(days=1):
        return ctx.flows.phrase(f"{prefix}_tomorrow", ctx.lang, time=time)
    names = day_names(ctx, "days_short" if short else "days_long_to")
    return ctx.flows.phrase(f"{prefix}_on", ctx.lang, day=names[nxt.weekday()], time=time)


def name(ctx: Context, service: Service) -> str:
    """The service's name as written (texts, lists)."""
    return ctx.flows.text(service.name, ctx.lang)


def said(ctx: Context, service: Service) -> str:
    """The name as said mid-sentence ('the Men's Advice Line', but 'Childline'): phrases never add 'the'."""
    return (service.said_as or {}).get(ctx.lang) or name(ctx, service)


def number(ctx: Context, service: Service) -> str:
    return phone.speak_number(service.number, ctx.lang) if ctx.channel == VOICE else service.number
