"""What a person hears or reads on arriving somewhere: the first contact, a menu, a service (put
through, closed, not answered, after the call), the police advice, the question "when is it safe to
text you?", and by text a service's details.

Why a module of its own: this is where the safety promises about order and wording are kept (the 999
advice first, the way to the 24-hour line early in the menu, nothing naming a service to a silent
caller); what a key or silence does next is router/engine/walking.py. Steps that depend only on the
flows, the language and the channel are kept with the flows (`memoised`): menus are what nearly every
request asks for.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from router.definition.model import ConnectNode, EndNode, MenuNode, SayNode, Service
from router.engine import wording
from router.engine.booking import morning
from router.engine.context import SMS, VOICE, Context, Dial, Line, Step
from router.engine.fallbacks import after_call_line, open_fallback, open_fallbacks
from router.engine.keypad import CONNECT_KEY, FOLLOWUP_KEY, MENU_KEY, OTHER_LINE_KEY, POLICE, SMS_FOLLOWUP_KEY
from router.engine.wording import describe_hours


def start(ctx: Context) -> Step:
    """First contact: the safety advice, then the start menu."""
    if isinstance(ctx.flows.nodes[ctx.flows.start], MenuNode):  # no clock in it: the same every time
        return memoised(ctx, ("start", ctx.lang, ctx.channel), _start)
    return _start(ctx)


def _start(ctx: Context) -> Step:
    advice = replace(ctx.say("voice_safety" if ctx.channel == VOICE else "sms_safety"), slow=True)
    step = present(ctx, ctx.flows.start).with_prefix(advice)
    if ctx.channel == SMS and isinstance(ctx.flows.nodes[ctx.flows.start], MenuNode):
        # 999 first, then that nobody reads these texts (issue 12), in place of the menu's "Reply:"
        step = replace(step, choices=(ctx.say("sms_automatic"),) + step.choices[1:])
    return step


def memoised(ctx: Context, key: tuple[str, ...], make: Callable[[Context], Step]) -> Step:
    """A Step that depends only on the flows, the language and the channel (a menu, the greeting),
    kept with the flows it came from: menus are what nearly every request asks for."""
    step = ctx.flows.memo.get(key)
    if step is None:
        step = ctx.flows.memo[key] = make(ctx)
    return step


def police(ctx: Context) -> Step:
    """How to reach the police, for someone who pressed 5 5 or 9 9 9 (or texted 55 / 999) here."""
    if ctx.channel == SMS:
        return Step(at=ctx.flows.start, lang=ctx.lang, lines=(ctx.say("sms_police"),),
                    choices=(ctx.say("sms_back_to_menu"),), events=(("police_advice", SMS),))
    advice = replace(ctx.say("voice_police"), slow=True, whole=True)
    return replace(present(ctx, POLICE).with_prefix(advice), events=(("police_advice", VOICE),))


def present(ctx: Context, at: str) -> Step:
    """What a person hears or reads on arriving at `at` (a node or one of the engine's places)."""
    if at == POLICE:
        return Step(at=POLICE, lang=ctx.lang, choices=(
            ctx.say("police_choices", key=CONNECT_KEY),))
    kind, _, service_id = at.partition(":")
    if kind == "dial":
        return connect(ctx, ctx.flows.services[service_id])
    if service_id:
        return _present_service_place(ctx, kind, ctx.flows.services[service_id])
    node = ctx.flows.nodes[at]
    if isinstance(node, MenuNode):
        return memoised(ctx, ("menu", at, ctx.lang, ctx.channel), lambda ctx: _present_menu(ctx, at, node))
    if isinstance(node, ConnectNode):
        return present_service(ctx, ctx.flows.services[node.service_for(ctx.lang)])
    if isinstance(node, SayNode):
        said = Line(ctx.flows.text(node.say, ctx.lang), ctx.lang)
        if node.next:
            return present(ctx, node.next).with_prefix(said)
        return Step(at=None, lang=ctx.lang, lines=(said,), hangup=True)
    assert isinstance(node, EndNode)
    lines = (Line(ctx.flows.text(node.say, ctx.lang), ctx.lang),) if node.say else ()
    return Step(at=None, lang=ctx.lang, lines=lines, hangup=True)


def _present_menu(ctx: Context, at: str, node: MenuNode) -> Step:
    lines = (Line(ctx.flows.text(node.prompt, ctx.lang), ctx.lang),) if node.prompt else ()
    return Step(at=at, lang=ctx.lang, lines=lines, choices=_menu_choices(ctx, node))


def _menu_choices(ctx: Context, node: MenuNode) -> tuple[Line, ...]:
    """The options of a menu. On a call, the start menu's first option says that staying on the line
    puts you through, and a language option comes straight after it, said in that language: both must
    be heard early, by someone with seconds to spare or who does not follow English."""
    options: list[Line] = []
    languages: list[Line] = []
    is_start = node is ctx.flows.nodes.get(ctx.flows.start)
    for option in node.options:
        if ctx.channel == SMS and option.next == ctx.flows.start:
            continue  # by text, 0 is the main menu already: one key, one meaning
        if option.language:
            target = option.language.get(ctx.lang)
            if target in ctx.flows.config.languages:
                phrase = "voice_language_option" if ctx.channel == VOICE else "sms_language_option"
                languages.append(Line(ctx.flows.phrase(phrase, target, key=option.key), target))
            continue
        label = option.sms_label if ctx.channel == SMS and option.sms_label else option.label
        phrase = "voice_option" if ctx.channel == VOICE else "sms_option"
        if ctx.channel == VOICE and is_start and not options:
            phrase = "voice_first_option"
        options.append(ctx.say(phrase, key=option.key, label=ctx.flows.text(label, ctx.lang)))
    if ctx.channel == VOICE:
        choices = options[:1] + languages + options[1:]
        if not is_start:  # the start menu is repeated on silence anyway; every second counts there
            choices.append(ctx.say("voice_repeat"))
        return tuple(choices)
    # by text, "0 Menu" on the main menu adds nothing (issue 12: small screens)
    repeat = () if is_start else (ctx.say("sms_repeat"),)
    return (ctx.say("sms_reply_with_number"), *options, *languages, *repeat)


def present_service(ctx: Context, service: Service) -> Step:
    """A service was chosen: dial it (voice, open), offer its fallback (voice, closed), or text its details."""
    is_open = service.schedule.is_open(ctx.now, ctx.region)
    events = (("service_chosen", service.id),) + (() if is_open else (("service_closed", service.id),))
    if ctx.channel == SMS:
        step = _present_service_place(ctx, "info", service)
        return replace(step, events=events)
    if is_open:
        return replace(connect(ctx, service), events=events)
    return replace(_present_service_place(ctx, "closed", service), events=events)


def connect(ctx: Context, service: Service) -> Step:
    """Put the caller through to an open service (what is said and dialled is the same every time)."""
    return memoised(ctx, ("dial", service.id, ctx.lang), lambda ctx: Step(
        at=None, lang=ctx.lang, lines=(ctx.say("connecting", name=wording.said(ctx, service)),),
        dial=Dial(service.id, service.e164, ctx.flows.config.dial_timeout_seconds)))


def _present_service_place(ctx: Context, kind: str, service: Service) -> Step:
    at = f"{kind}:{service.id}"
    step = Step(at=at, lang=ctx.lang)
    if kind == "closed":  # the whole message, so that 0 ("hear this again") repeats the hours too
        closed = ctx.say("service_closed", name=wording.said(ctx, service), hours=describe_hours(ctx, service),
                         opens=wording.opens_next(ctx, service))
        return replace(step, lines=(closed,), choices=_offers(ctx, kind, service))
    if kind == "unanswered":
        return replace(step, choices=_offers(ctx, kind, service))
    if kind == "after":
        return replace(step, choices=_after_call_offers(ctx, service))
    if kind in {"when", "consent"}:
        return replace(step, at=f"when:{service.id}",
                       choices=(ctx.say(f"{ctx.channel}_ask_when", morning=morning(ctx)),))
    # kind == "info": the text channel's answer for a service
    lines = [ctx.say("sms_service_info", name=wording.name(ctx, service), number=service.number,
                     hours=describe_hours(ctx, service), website=service.website,
                     open_now=_open_now_text(ctx, service))]
    choices = [ctx.say("sms_offer_followup", key=SMS_FOLLOWUP_KEY)] if ctx.can_text else []
    choices.append(ctx.say("sms_back_to_menu"))
    return replace(step, lines=tuple(lines), choices=tuple(choices))


def _offers(ctx: Context, kind: str, service: Service) -> tuple[Line, ...]:
    """What a caller can do when a line is closed or nobody answered it: other open lines for the same
    people (the first two down the fallback chain, on keys 1 and 3, while it is closed), the same line
    again, the number by text (asked once, with the warning in the question), and for those who cannot
    be texted the number said slowly (0 says it again); after a failed call, the 999 advice again."""
    offers = []
    fallbacks = open_fallbacks(ctx, service)
    number = replace(ctx.say("say_number", name=wording.said(ctx, service), number=wording.number(ctx, service)),
                     slow=True)
    if kind == "closed" and not ctx.can_text:  # right after its hours: the number of the line they chose
        offers.append(number)
    if kind == "unanswered":
        offers.append(ctx.say("danger_reminder"))
        if service.schedule.is_open(ctx.now, ctx.region):
            offers.append(ctx.say("offer_retry", key=CONNECT_KEY))
        if fallbacks:
            offers.append(ctx.say("offer_fallback", key=OTHER_LINE_KEY, name=wording.said(ctx, fallbacks[0])))
    else:
        offers += [ctx.say("offer_fallback", key=key, name=wording.said(ctx, fallback))
                   for key, fallback in zip((CONNECT_KEY, OTHER_LINE_KEY), fallbacks)]
    if ctx.can_text and kind == "unanswered":  # a silent caller may be here: name nothing
        offers.append(ctx.say("offer_followup_unanswered", key=FOLLOWUP_KEY))
    elif ctx.can_text:
        offers.append(ctx.say("offer_followup", key=FOLLOWUP_KEY, name=wording.said(ctx, service)))
    elif kind == "unanswered":
        offers.append(number)
    offers.append(ctx.say("voice_back_to_menu", key=MENU_KEY))
    return tuple(offers)


def _after_call_offers(ctx: Context, service: Service) -> tuple[Line, ...]:
    """A caller whose chosen line answered and ended (with a recording, perhaps) is never stranded: put
    through again (1), the number by text (2), the main menu (9)."""
    offers = []
    line = after_call_line(ctx, service)
    if line is not None and line.id == service.id:
        offers.append(ctx.say("offer_retry", key=CONNECT_KEY))
    elif line is not None:
        offers.append(ctx.say("offer_fallback", key=CONNECT_KEY, name=wording.said(ctx, line)))
    if ctx.can_text:
        offers.append(ctx.say("offer_followup_after_call", key=FOLLOWUP_KEY))
    offers.append(ctx.say("voice_back_to_menu", key=MENU_KEY))
    return tuple(offers)


def _open_now_text(ctx: Context, service: Service) -> str:
    if service.schedule.is_open(ctx.now, ctx.region):
        return ctx.flows.phrase("sms_open_now", ctx.lang)
    fallback = open_fallback(ctx, service)
    closed = ctx.flows.phrase("sms_closed_now", ctx.lang, opens=wording.opens_next(ctx, service, short=True))
    if fallback is None:
        return closed
    return closed + ctx.flows.phrase("sms_fallback", ctx.lang, name=wording.name(ctx, fallback),
                                     number=fallback.number)
