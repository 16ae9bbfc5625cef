"""The flow engine: pure functions from (flows, where the person is, what they pressed, time, language,
channel) to the next Step, as plain data.

It knows nothing of Flask, Twilio or Redis, so the voice and text channels, the simulator, the lint and
the operators' scenarios all run exactly this code: a bug fixed here is fixed on every channel. How
hours, times and names are put into words is router/engine/wording.py's job.

Where a person is ("at") is a short string: a node id of the menu tree, or one of the engine's own
places after a service was chosen ("closed:galop", "consent:galop", ...). Unknown places (a stale URL
after a flow reload, a tampered one) fall back to the start menu: never an error.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from router.definition import hours as hours_mod
from router.definition.model import ConnectNode, EndNode, Flows, MenuNode, Option, SayNode, Service
from router.engine import wording
from router.engine.fallbacks import after_call_line, open_fallback, open_fallbacks
from router.engine.wording import SMS, VOICE, describe_hours

REPEAT_KEYS = frozenset({"0", "*"})
# One meaning per key wherever a service was chosen on a call: 1 puts you through (the open fallback of a
# closed line, or the same line again after it was busy), 2 says yes to a text (the safety warning is in
# that one question), 3 the open fallback of a busy line, 9 the main menu, 0 hear this again.
CONNECT_KEY, FOLLOWUP_KEY, OTHER_LINE_KEY, MENU_KEY = "1", "2", "3", "9"
FALLBACK_KEY = CONNECT_KEY
SMS_FOLLOWUP_KEY = "8"
WHEN_CHOICES = {VOICE: ("now", "later", "morning"), SMS: ("later", "morning")}
# Someone following the 999 advice may press 5 5 (the Silent Solution) or 9 9 9 at our menu. The first
# key does what it always does, but the adapter listens briefly for the same key again (a "window");
# the same key again means the advice was being followed: say how to reach the police, in the language
# the caller was in when they started.
WINDOW_KEYS = frozenset({"5", "9"})
POLICE = "police"
POLICE_TEXTS = frozenset({"55", "999", "5 5", "9 9 9"})


@dataclass(frozen=True)
class Line:
    text: str
    lang: str
    slow: bool = False  # safety advice: spoken slowly and clearly
    whole: bool = False  # advice a burst of keys leads to (5 5, 9 9 9): said where no key can cut it off


@dataclass(frozen=True)
class Dial:
    service_id: str
    number: str  # E.164
    timeout: int


@dataclass(frozen=True)
class Followup:
    """A text the person said yes to: what, when. Holds the number only as long as the work is pending."""

    service_id: str
    when: str  # now | later | morning
    send_at: datetime
    body: str


@dataclass(frozen=True)
class Step:
    at: str | None            # where the next key is read; None when this step ends the conversation
    lang: str
    lines: tuple[Line, ...] = ()
    choices: tuple[Line, ...] = ()
    dial: Dial | None = None
    followup: Followup | None = None
    hangup: bool = False
    events: tuple[tuple[str, str], ...] = field(default=())  # (metric, label) for aggregate counters
    window: str = ""       # voice: the key that led here and may begin 5 5 or 9 9 9; listen for it again
    window_lang: str = ""  # the language the caller was in when they pressed it

    @property
    def window_at(self) -> str | None:
        """Where a second key pressed during the window is read: this step's place, or its dial."""
        if self.at:
            return self.at
        return f"dial:{self.dial.service_id}" if self.dial else None

    def with_prefix(self, *lines: Line) -> "Step":
        return replace(self, lines=tuple(lines) + self.lines)


@dataclass(frozen=True)
class Context:
    """What the engine may know about the moment, never who the person is."""

    flows: Flows
    channel: str
    lang: str
    now: datetime
    can_text: bool = False

    def say(self, phrase_id: str, /, **values: object) -> Line:
        text = self.flows.phrase(phrase_id, self.lang, **values)
        if isinstance(values.get("name"), str):
            text = wording.close_apposition(text, values["name"])
        grammar = wording.GRAMMAR.get(self.lang)
        return Line(wording.sentence(grammar(text) if grammar else text), self.lang)

    @property
    def region(self) -> str:
        return self.flows.config.bank_holiday_region


# ------------------------------------------------------------------ entry points
def start(ctx: Context) -> Step:
    """First contact: the safety advice, then the start menu."""
    if isinstance(ctx.flows.nodes[ctx.flows.start], MenuNode):  # no clock in it: the same every time
        return _memoised(ctx, ("start", ctx.lang, ctx.channel), _start)
    return _start(ctx)


def _start(ctx: Context) -> Step:
    advice = replace(ctx.say("voice_safety" if ctx.channel == VOICE else "sms_safety"), slow=True)
    step = present(ctx, ctx.flows.start).with_prefix(advice)
    if ctx.channel == SMS and isinstance(ctx.flows.nodes[ctx.flows.start], MenuNode):
        # 999 first, then that nobody reads these texts (issue 12), in place of the menu's "Reply:"
        step = replace(step, choices=(ctx.say("sms_automatic"),) + step.choices[1:])
    return step


def _memoised(ctx: Context, key: tuple, make) -> Step:
    """A Step that depends only on the flows, the language and the channel (a menu, the greeting),
    kept with the flows it came from: menus are what nearly every request asks for."""
    step = ctx.flows.memo.get(key)
    if step is None:
        step = ctx.flows.memo[key] = make(ctx)
    return step


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
    option = _find_option(node, key) if isinstance(node, MenuNode) else None
    if option is None:
        return present(ctx, at).with_prefix(ctx.say("wrong_key"))
    if option.language:
        new_lang = option.language.get(ctx.lang)
        if new_lang and new_lang in ctx.flows.config.languages:
            return start(replace(ctx, lang=new_lang))
        return present(ctx, at)
    return present(ctx, option.next)


def police(ctx: Context) -> Step:
    """How to reach the police, for someone who pressed 5 5 or 9 9 9 (or texted 55 / 999) here."""
    if ctx.channel == SMS:
        return Step(at=ctx.flows.start, lang=ctx.lang, lines=(ctx.say("sms_police"),),
                    choices=(ctx.say("sms_back_to_menu"),), events=(("police_advice", SMS),))
    advice = replace(ctx.say("voice_police"), slow=True, whole=True)
    return replace(present(ctx, POLICE).with_prefix(advice), events=(("police_advice", VOICE),))


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


# ------------------------------------------------------------------ presenting a place
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
        return _memoised(ctx, ("menu", at, ctx.lang, ctx.channel), lambda ctx: _present_menu(ctx, at, node))
    if isinstance(node, ConnectNode):
        return _present_service(ctx, ctx.flows.services[node.service_for(ctx.lang)])
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
    options, languages = [], []
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


def _present_service(ctx: Context, service: Service) -> Step:
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
    return _memoised(ctx, ("dial", service.id, ctx.lang), lambda ctx: Step(
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
                       choices=(ctx.say(f"{ctx.channel}_ask_when", morning=_morning(ctx)),))
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


def _press_after_service(ctx: Context, kind: str, service_id: str, key: str) -> Step:
    service = ctx.flows.services[service_id]
    wrong = ctx.say("wrong_key")
    if kind in {"closed", "unanswered"}:
        fallbacks = open_fallbacks(ctx, service)
        keys = (OTHER_LINE_KEY,) if kind == "unanswered" else (CONNECT_KEY, OTHER_LINE_KEY)
        chosen = dict(zip(keys, fallbacks)).get(key)
        if chosen is not None:
            return replace(_present_service(ctx, chosen), events=(("fallback_used", chosen.id),))
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


# ------------------------------------------------------------------ follow-ups
def schedule_followup(ctx: Context, service: Service, when: str) -> Step:
    send_at = followup_time(ctx, when)
    name_part = ctx.flows.phrase("followup_name", ctx.lang, name=wording.name(ctx, service)) \
        if service.name_in_followup else ""
    body = ctx.flows.phrase("followup_text", ctx.lang, name=name_part, number=service.number,
                            hours=describe_hours(replace(ctx, channel=SMS), service))
    phrase = f"followup_confirm_{when}"
    if ctx.channel == VOICE and (when == "now" or cancel_key_free(ctx.flows)):
        phrase = f"voice_{phrase}"  # cancel by calling again and a key: a text would leave a trace
    lines = (ctx.say(phrase, morning=_morning(ctx), key=VOICE_CANCEL_KEY),)
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
                lines=(ctx.say("followup_unavailable", name=wording.said(ctx, service), number=wording.number(ctx, service)),))


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


# ------------------------------------------------------------------ wording helpers
def _morning(ctx: Context) -> str:
    """'at 9am tomorrow', or 'at 9am today' when it is 03:00: the actual time a morning text is sent."""
    send_at = followup_time(ctx, "morning")
    today = ctx.now.astimezone(hours_mod.LONDON).date()
    day = "day_today" if send_at.date() == today else "day_tomorrow"
    return ctx.flows.phrase("followup_morning", ctx.lang, time=wording.clock(ctx, send_at.hour * 60 + send_at.minute),
                            day=ctx.flows.phrase(day, ctx.lang))


def _open_now_text(ctx: Context, service: Service) -> str:
    if service.schedule.is_open(ctx.now, ctx.region):
        return ctx.flows.phrase("sms_open_now", ctx.lang)
    fallback = open_fallback(ctx, service)
    closed = ctx.flows.phrase("sms_closed_now", ctx.lang, opens=wording.opens_next(ctx, service, short=True))
    if fallback is None:
        return closed
    return closed + ctx.flows.phrase("sms_fallback", ctx.lang, name=wording.name(ctx, fallback),
                                     number=fallback.number)


def _find_option(node: MenuNode, key: str) -> Option | None:
    return next((option for option in node.options if option.key == key), None)


PLACES = frozenset({"closed", "unanswered", "after", "consent", "when", "info", "dial"})


def known_place(flows: Flows, at: str) -> bool:
    if at == POLICE:
        return True
    kind, _, service_id = at.partition(":")
    if service_id:
        return kind in PLACES and service_id in flows.services
    return at in flows.nodes


# ------------------------------------------------------------------ cancelling by key on a call
# Caller ID is not proof (issue 18): nothing here depends on what is stored for the number. Key 8 cancels
# on every call, unannounced, with the same words whether or not a text was pending. Only a failure to
# record a cancellation is said differently: it depends on Redis, not the number. (The text channel's
# answers that must not give a person away are in router/engine/texts.py.)
VOICE_CANCEL_KEY = "8"   # free on the shipped main menu; cancels only while no option uses it












def cancel_key_free(flows: Flows) -> bool:
    """The start menu does not use VOICE_CANCEL_KEY itself (an operator may give it an option)."""
    node = flows.nodes[flows.start]
    return isinstance(node, MenuNode) and _find_option(node, VOICE_CANCEL_KEY) is None


def cancelled_by_key(ctx: Context) -> Step:
    """The caller pressed the cancel key on the main menu: the same words whether or not a text was
    pending (true either way); then the menu, as a call goes on."""
    return replace(present(ctx, ctx.flows.start).with_prefix(ctx.say("voice_cancelled")),
                   events=(("followup_cancelled", "voice_key"),))


def cancel_not_recorded(ctx: Context) -> Step:
    """The cancel key, but Redis could not record it: say it did not work and how to try again."""
    return replace(present(ctx, ctx.flows.start).with_prefix(
        ctx.say("voice_cancel_failed", key=VOICE_CANCEL_KEY)), events=(("followup_cancel_failed", "voice_key"),))
