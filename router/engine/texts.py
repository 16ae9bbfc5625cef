"""Steps only the text channel gives: a stop, the discreet answers of the follow-up sender, the advice
past the limits (issues 12, 18), a first reply that says texts stay on the phone, words of crisis, a
reply we did not understand, and a landline's texts (issue 19). Pure, built on router/engine/presenting.py;
which of them a text gets is decided in router/engine/texting.py.

Caller ID is not proof (issue 18): a stop gets the same words (and the 999 advice) whether or not
anything was cancelled; only a stop Redis could not record is answered differently.
"""
from __future__ import annotations

from dataclasses import replace

from router.engine.context import Context, Line, Step
from router.engine.presenting import police, start


def first_reply(ctx: Context) -> Step:
    """The first reply of a conversation: the 999 advice, then once, in a few words, that our texts stay
    on the phone and to delete them (whoever picks the phone up may read them), then the menu."""
    step = start(ctx)
    note = ctx.say("sms_stays")
    return replace(step, lines=step.lines[:1] + (note,) + step.lines[1:])


def crisis(ctx: Context) -> Step:
    """Words of crisis ("I want to end it all"): the 999 advice and the Samaritans, then the way back."""
    return Step(at=ctx.flows.start, lang=ctx.lang, lines=(ctx.say("sms_safety"), ctx.say("sms_crisis")),
                choices=(ctx.say("sms_back_to_menu"),), events=(("sms_crisis", "samaritans"),))


def not_understood(ctx: Context, at: str) -> Step:
    """A reply we could not read as a choice, in a conversation: say what we expected, not the whole menu
    again (which names every service once more on the screen)."""
    return Step(at=at, lang=ctx.lang, lines=(ctx.say("sms_not_understood"),),
                events=(("sms_not_understood", "reply"),))


def landline(ctx: Context) -> Step:
    """A text from a landline: the carrier may read our reply aloud to the household, so only the 999
    advice and the 24-hour number (named as nothing more than a helpline), never the menu of services."""
    service = ctx.flows.emergency_for(ctx.lang)
    return Step(at=None, lang=ctx.lang, lines=(ctx.say("sms_safety"), ctx.say("sms_landline", number=service.number)),
                events=(("sms_landline", "reply"),))


def _advice(ctx: Context, neutral: bool, in_crisis: bool) -> tuple[Line, ...]:
    """The 999 advice after a stop, and the Samaritans too when the same text has words of crisis ("stop,
    I want to die"): a stop never swallows a crisis (router/engine/crisis.py)."""
    advice = (ctx.say("sms_neutral_emergency" if neutral else "sms_safety"),)
    return advice + ((ctx.say("sms_crisis"),) if in_crisis else ())


def stopped(ctx: Context, neutral: bool = False, in_crisis: bool = False) -> Step:
    """A stop: everything pending for the number was cancelled (or there was nothing): one line that is
    true either way, and the 999 advice, in case the "stop" was a cry for help ("stop hurting me").
    Never the menu. `neutral`: a text to the follow-up sender, answered as any automated number would."""
    return Step(at=None, lang=ctx.lang, lines=(ctx.say("sms_stopped"),) + _advice(ctx, neutral, in_crisis),
                events=(("sms_stop", "stop"),))


def stop_not_recorded(ctx: Context, neutral: bool = False, in_crisis: bool = False) -> Step:
    """A stop that could not be recorded (Redis down): never "cancelled"; say so and how to try again."""
    return Step(at=None, lang=ctx.lang, lines=(ctx.say("sms_stop_failed"),) + _advice(ctx, neutral, in_crisis),
                events=(("sms_stop", "failed"),))


def crisis_without_menu(ctx: Context) -> Step:
    """Words of crisis where no menu may follow (a landline, the follow-up sender): the 999 advice and the
    Samaritans, nothing else."""
    return replace(crisis(ctx), at=None, choices=())


def discreet(ctx: Context) -> Step:
    """A text to the follow-up sender: whoever holds the phone may not be the person who asked, so it
    reads like any automated business number: no service, no abuse, no MENU; an emergency is still 999."""
    return Step(at=None, lang=ctx.lang, lines=(ctx.say("sms_discreet"),), events=(("sms_discreet", "reply"),))


def police_discreetly(ctx: Context) -> Step:
    """55 / 999 texted to the follow-up sender: how to reach the police, and no way into the menu."""
    return replace(police(ctx), at=None, choices=())


def safety_only(ctx: Context) -> Step:
    """The 999 advice and nothing else: what a texter over the reply limits gets."""
    return Step(at=None, lang=ctx.lang, lines=(ctx.say("sms_safety"),), events=(("sms_limited", "advice"),))
