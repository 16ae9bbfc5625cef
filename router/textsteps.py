"""Steps only the text channel gives (issue 19, texts): a first reply that says texts stay on the phone,
words of crisis, a reply we did not understand, and a landline's texts. Pure, like router/engine.py,
which they build on; kept apart so the engine stays one module of a readable size.
"""
from __future__ import annotations

from dataclasses import replace

from router.engine import Context, Step, start


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
