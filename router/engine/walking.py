"""Walking the menu: what a key, a silence or the end of a dialled call does from where the person is.

Why a module of its own: the typed inputs (router/engine/inputs.py) come in here and a Step goes out;
every rule about what a key means in a place (one meaning per key, router/engine/keypad.py), what
silence leads to (never the menu twice, never a service named to a silent caller: issue 19) and how
5 5 / 9 9 9 is recognised is in this one file. What is then said is router/engine/presenting.py.
"""
from __future__ import annotations

from dataclasses import replace

from router.definition.model import MenuNode, Service
from router.engine.booking import schedule_followup
from router.engine.context import SMS, VOICE, Context, Dial, Step
from router.engine.fallbacks import after_call_line, open_fallback, open_fallbacks
from router.engine.inputs import DialResult, Input, Keys, Silence
from router.engine.keypad import (CONNECT_KEY, FOLLOWUP_KEY, MENU_KEY, OTHER_LINE_KEY, POLICE, POLICE_TEXTS,
                                  REPEAT_KEYS, SMS_FOLLOWUP_KEY, VOICE_CANCEL_KEY, WHEN_CHOICES, WINDOW_KEYS,
                                  find_option, known_place)
from router.engine.presenting import connect, police, present, present_service, start


def resume(ctx: Context, at: str | None, given: Input) -> Step:
    """The person at `at` gave `given` (a key press, silence, the end of a dialled call): the next Step.
    The one entry point the channels call once a conversation has begun."""
    if isinstance(given, Keys):
        return press(ctx, at, given.digits, recent=given.recent, recent_lang=given.recent_lang)
    if isinstance(given, Silence):
        return silence(ctx, at, given.attempt)
    if isinstance(given, DialResult):
        return dial_result(ctx, given.service_id, given.status)
    raise TypeError(f"not an engine input: {given!r}")


def press(ctx: Context, at: str | None, key: str | None, *, recent: str = "", recent_lang: str = "") -> Step:
    """The person at `at` pressed or replied `key`. On a call, `recent` is the key pressed just before,
    when `key` came during the brief window after it (see WINDOW_KEYS)."""
    key = (key or "").strip()
    if ctx.channel == SMS and key in POLICE_TEXTS:
        return police(ctx)
    if recent and recent in WINDOW_KEYS and key == recent:
        return police(replace(ctx, lang=recent_lang if recent_lang in ctx.flows.config.languages else ctx.lang))
    step = _press(ctx, at, key)
    if ctx.channel == VOICE and key in WINDOW_KEYS and not step.hangup and step.window_at \
            and step.at != POLICE:
        return replace(step, window=key, window_lang=ctx.lang)
    return step


def _press(ctx: Context, at: str | None, key: str) -> Step:
    at = at if at and known_place(ctx.flows, at) else ctx.flows.start
    if at == POLICE:
        return _press_at_police(ctx, key)
    kind, _, service_id = at.partition(":")
    if kind == "dial":  # a stray key while being put through: the caller is still put through
        return connect(ctx, ctx.flows.services[service_id])
    if key in REPEAT_KEYS:
        return present(ctx, at)
    if service_id:
        return _press_after_service(ctx, kind, service_id, key)
    node = ctx.flows.nodes[at]
    option = find_option(node, key) if isinstance(node, MenuNode) else None
    if option is None:
        return present(ctx, at).with_prefix(ctx.say("wrong_key"))
    if option.language:
        new_lang = option.language.get(ctx.lang)
        if new_lang and new_lang in ctx.flows.config.languages:
            return start(replace(ctx, lang=new_lang))
        return present(ctx, at)
    assert option.next is not None, "the schema gives every option a language or a next"
    return present(ctx, option.next)


def _press_at_police(ctx: Context, key: str) -> Step:
    if key == CONNECT_KEY:
        return connect(ctx, ctx.flows.emergency_for(ctx.lang))
    if key in REPEAT_KEYS:
        return present(ctx, ctx.flows.start)
    if key in WINDOW_KEYS:  # the rest of 9 9 9: no "wrong key", just the choices again
        return present(ctx, POLICE)
    return present(ctx, POLICE).with_prefix(ctx.say("wrong_key"))


def silence(ctx: Context, at: str | None, attempt: int) -> Step:
    """No key pressed. At the start menu, after its one reading and one wait, the caller is put through
    to the 24-hour line for their language: the menu is never read aloud twice for whoever else is in
    the room (issue 19: under ~45 s and 100 words from the start). Elsewhere (a sub-menu, a closed line)
    a caller who has pressed keys hears the options once more first. Nothing said on the way names a
    service or the word "abuse": whoever made them go quiet may be listening. Where putting through
    would be wrong (after a finished call, or a line for people worried about their own behaviour) the
    call ends with a neutral goodbye."""
    at = at if at and known_place(ctx.flows, at) else ctx.flows.start
    kind, _, service_id = at.partition(":")
    service = ctx.flows.services.get(service_id) if service_id else None
    if kind == "dial" and service is not None:
        return connect(ctx, service)
    if kind == "after":  # the call they chose has ended: thank them, naming nothing
        return Step(at=None, lang=ctx.lang, hangup=True, lines=(ctx.say("goodbye"),),
                    events=(("silence_end", ctx.channel),))
    if kind in {"when", "consent", "info"}:
        return _quiet_goodbye(ctx)
    if kind == "unanswered" and service is not None:  # try again, without a word about who
        target = service if service.schedule.is_open(ctx.now, ctx.region) else open_fallback(ctx, service)
        return _connect_quietly(ctx, target) if target else _quiet_goodbye(ctx)
    if attempt <= 1 and at != ctx.flows.start:
        return present(ctx, at).with_prefix(ctx.say("no_input"))
    if kind == "closed" and service is not None:
        target = open_fallback(ctx, service)
        return _connect_quietly(ctx, target) if target else _quiet_goodbye(ctx)
    return _connect_quietly(ctx, ctx.flows.emergency_for(ctx.lang))


def _connect_quietly(ctx: Context, service: Service) -> Step:
    return Step(at=None, lang=ctx.lang, lines=(ctx.say("silent_connecting"),),
                dial=Dial(service.id, service.e164, ctx.flows.config.dial_timeout_seconds),
                events=(("silence_connect", service.id),))


def _quiet_goodbye(ctx: Context) -> Step:
    return Step(at=None, lang=ctx.lang, hangup=True, lines=(ctx.say("quiet_goodbye"),),
                events=(("silence_end", ctx.channel),))


def dial_result(ctx: Context, service_id: str, status: str) -> Step:
    """Twilio's DialCallStatus for a service we put the caller through to."""
    service = ctx.flows.services.get(service_id)
    if service is None:
        return present(ctx, ctx.flows.start)
    if status == "completed":
        return present(ctx, f"after:{service_id}")
    return present(ctx, f"unanswered:{service_id}").with_prefix(ctx.say("service_unanswered"))


def _press_after_service(ctx: Context, kind: str, service_id: str, key: str) -> Step:
    service = ctx.flows.services[service_id]
    wrong = ctx.say("wrong_key")
    if kind in {"closed", "unanswered"}:
        fallbacks = open_fallbacks(ctx, service)
        keys = (OTHER_LINE_KEY,) if kind == "unanswered" else (CONNECT_KEY, OTHER_LINE_KEY)
        chosen = dict(zip(keys, fallbacks)).get(key)
        if chosen is not None:
            return replace(present_service(ctx, chosen), events=(("fallback_used", chosen.id),))
        if kind == "unanswered" and key == CONNECT_KEY and service.schedule.is_open(ctx.now, ctx.region):
            return replace(connect(ctx, service), events=(("retry", service.id),))
        if key == FOLLOWUP_KEY and ctx.can_text:
            return present(ctx, f"when:{service_id}")
        if key == MENU_KEY:
            return present(ctx, ctx.flows.start)
    elif kind == "after":
        line = after_call_line(ctx, service)
        if key == CONNECT_KEY and line is not None:
            return replace(connect(ctx, line), events=(("after_call", line.id),))
        if key == FOLLOWUP_KEY and ctx.can_text:
            return present(ctx, f"when:{service_id}")
        if key == MENU_KEY:
            return present(ctx, ctx.flows.start)
    elif kind in {"when", "consent"} and ctx.can_text:
        options = WHEN_CHOICES[ctx.channel]
        if key.isdigit() and 1 <= int(key) <= len(options):
            return schedule_followup(ctx, service, options[int(key) - 1])
        kind = "when"
    elif kind == "info":
        if key == SMS_FOLLOWUP_KEY and ctx.can_text:
            return present(ctx, f"when:{service_id}")
        return press(ctx, ctx.flows.start, key)  # a texter replying "3" after an answer means option 3
    return present(ctx, f"{kind}:{service_id}").with_prefix(wrong)



# ------------------------------------------------------------------ cancelling by key on a call
def cancelled_by_key(ctx: Context) -> Step:
    """The caller pressed the cancel key on the main menu: the same words whether or not a text was
    pending (true either way); then the menu, as a call goes on."""
    return replace(present(ctx, ctx.flows.start).with_prefix(ctx.say("voice_cancelled")),
                   events=(("followup_cancelled", "voice_key"),))


def cancel_not_recorded(ctx: Context) -> Step:
    """The cancel key, but Redis could not record it: say it did not work and how to try again."""
    return replace(present(ctx, ctx.flows.start).with_prefix(
        ctx.say("voice_cancel_failed", key=VOICE_CANCEL_KEY)), events=(("followup_cancel_failed", "voice_key"),))
