"""The text channel: the same menu tree by numbered replies, with conversation state in Redis.

State is only "where in the menu, which language", under a keyed hash of the number, with a short TTL.
If Redis is down the channel still answers: the top menu and direct service replies need no state.

A text can reach a phone someone else holds, and a sender's number can be faked, so (issues 12, 18):
- no answer depends on what is stored for the sender's number (a text booked, sent or refused): the
  words for the same text are those a number never seen before gets;
- a stop however typed (router/engine/stopwords.py), or Twilio's own opt-out (`OptOutType=STOP`), cancels
  everything pending for the number and is answered in one line and the 999 advice, never the menu;
  the same line whether or not anything was pending, and never "cancelled" when Redis could not record it;
- a text to the follow-up sender (FOLLOWUP_SENDER: recognised by `To` or `MessagingServiceSid`, without
  Redis) is answering a follow-up, on a phone anyone may hold: it gets only the discreet answer of an
  automated number (55 / 999 still get the police advice), never the menu, Redis or not;
- free text gets the 999 advice, "nobody reads these texts" and the menu; one sender's texts get full
  answers, then the 999 advice only, then none (router/store/limits.py), while a stop is always acted on.
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace

from flask import Blueprint, Response, request
from twilio.twiml.messaging_response import MessagingResponse

from router.engine import crisis, stopwords, texts as textsteps
from router import engine, metrics
from router.web import followups
from router.definition import phone
from router.engine import Step
from router.store.limits import Reply, reply_level
from router.definition.model import Flows
from router.web.runtime import runtime
from router.web.signature import public_base
from router.store.state import Arrival, Conversation, StateUnavailable

bp = Blueprint("sms", __name__, url_prefix="/sms")
log = logging.getLogger("router.web.sms")

FINAL_MESSAGE_STATUSES = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})
STOP_WORDS = stopwords.STOP_WORDS  # a stop is recognised by stopwords.is_stop, however it is typed
NO_REPLY = str(MessagingResponse())  # valid TwiML that sends nothing
MENU_WORDS = frozenset({"MENU", "HELP", "0", "DEWISLEN", "HELPU", "CYMORTH"})
# Words of someone asking for help now: answered (the police advice) past every other limit (issue 19).
HELP_WORDS = frozenset({"HELP", "HELPU", "CYMORTH", "SOS", "999", "55", "DANGER", "PERYGL"})
LANGUAGE_WORDS = {"CYMRAEG": "cy", "WELSH": "cy", "ENGLISH": "en", "SAESNEG": "en"}


# A choice as people type it (issue 19): "one", "option 1", "1 please", "number 1", "first one", "1.".
NUMBER_WORDS = {
    "ZERO": "0", "ONE": "1", "TWO": "2", "THREE": "3", "FOUR": "4", "FIVE": "5", "SIX": "6", "SEVEN": "7",
    "EIGHT": "8", "NINE": "9", "FIRST": "1", "SECOND": "2", "THIRD": "3", "FOURTH": "4", "FIFTH": "5",
    "SIXTH": "6", "SEVENTH": "7", "EIGHTH": "8", "NINTH": "9", "1ST": "1", "2ND": "2", "3RD": "3", "4TH": "4",
    "5TH": "5", "6TH": "6", "7TH": "7", "8TH": "8", "9TH": "9",
    # UNREVIEWED Welsh numbers
    "UN": "1", "DAU": "2", "DWY": "2", "TRI": "3", "TAIR": "3", "PEDWAR": "4", "PEDAIR": "4", "PUMP": "5",
    "CHWECH": "6", "SAITH": "7", "WYTH": "8", "NAW": "9", "CYNTAF": "1",
}
ORDINALS = frozenset({"FIRST", "SECOND", "THIRD", "FOURTH", "FIFTH", "SIXTH", "SEVENTH", "EIGHTH", "NINTH",
                      "CYNTAF"})
# Not "NO": "no 1" at "When is it safe to text you?" must never read as a choice that books a text.
FILLER_WORDS = frozenset({"OPTION", "OPTIONS", "NUMBER", "NUM", "NR", "PLEASE", "PLS", "PLZ", "THE",
                          "CHOICE", "PRESS", "REPLY", "IT", "IS", "ITS", "I", "WANT", "CHOOSE", "PICK", "THANKS",
                          "THX", "OK", "OPSIWN", "RHIF", "PLIS", "DIOLCH"})
# Yes / no where a question was asked (issue 19): "Reply 8 for this number by text later" takes a yes.
YES_WORDS = frozenset({"YES", "YEAH", "YEP", "YUP", "YA", "Y", "OK", "OKAY", "SURE", "IE", "OES", "GWNEWCH"})
NO_WORDS = frozenset({"NO", "NOPE", "NAH", "N", "NA", "NAC", "NADDO", "NAGE"})


def keyword(body: str) -> str:
    """Case-, space- and width-insensitive form of a reply: ' Stop ' -> 'STOP', '2.' -> '2', 'ＭＥＮＵ' ->
    'MENU' (folded as stop words are, stopwords.fold); a number however typed -> its digits ('option 1',
    'first one', 'one' -> '1'); '*' and '#' stay themselves."""
    found = stopwords.words(body)
    kept = [w for w in found if w not in FILLER_WORDS]
    ordinal = any(w in ORDINALS for w in kept)
    digits = [NUMBER_WORDS.get(w, w) for w in kept if not (ordinal and w == "ONE")]
    if digits and all(d.isdigit() for d in digits) and (len(digits) == 1 or all(len(d) == 1 for d in digits)):
        return "".join(digits)
    folded = "".join(found)
    if folded:
        return folded
    word = re.sub(r"\s+", "", body or "").upper()
    return word.rstrip(".!") or word


_rendered: dict[Step, str] = {}
RENDER_CACHE_SIZE = 4096


def render(step: Step) -> str:
    """A Step as a messaging TwiML document; the same Step always gives the same one, so recent ones
    are kept (a Step holds no caller data; follow-up steps are not kept)."""
    document = _rendered.get(step)
    if document is None:
        document = _render(step)
        if step.followup is None:
            if len(_rendered) >= RENDER_CACHE_SIZE:
                _rendered.clear()
            _rendered[step] = document
    return document


def _render(step: Step) -> str:
    response = MessagingResponse()
    text = "\n".join(line.text for line in step.lines + step.choices if line.text)
    response.message(text, action="/sms/status")
    return str(response)


def _xml(document: str) -> Response:
    return Response(document, mimetype="application/xml")


def is_key(word: str) -> bool:
    """A keypad-like reply ('3', '0', '*', or 55 / 999 for the police advice); anything else is free text."""
    return (len(word) == 1 and word in "0123456789*#") or word in engine.POLICE_TEXTS


def decide(flows: Flows, word: str, conversation: Conversation | None, fresh: bool,
           ctx: engine.Context, body: str = "") -> Step:
    """The Step for one inbound text to the helpline, given where the texter is in the menu (ctx.lang is
    already the texter's). A retried MessageSid (fresh=False) gets the answer of where the texter already
    is, and advances nothing."""
    if not fresh:
        return engine.present(ctx, conversation.at) if conversation else engine.start(ctx)
    if word in engine.POLICE_TEXTS:  # 55 / 999, following the 999 advice: always how to reach the police
        return engine.police(ctx)
    if crisis.is_crisis(body):
        return textsteps.crisis(ctx)
    if LANGUAGE_WORDS.get(word) in flows.config.languages:
        ctx = replace(ctx, lang=LANGUAGE_WORDS[word])
        return textsteps.first_reply(ctx) if conversation is None else engine.start(ctx)
    if conversation is None:  # a first text, of any content: the advice, "these stay", the menu
        return textsteps.first_reply(ctx)
    if word in MENU_WORDS or HELP_WORDS & set(stopwords.words(body)):
        return engine.start(ctx)  # the 999 advice first, then the menu
    kind = conversation.at.partition(":")[0]
    if kind == "info" and word in YES_WORDS | NO_WORDS:
        word = engine.SMS_FOLLOWUP_KEY if word in YES_WORDS else "0"
    elif kind == "when" and word in NO_WORDS:
        return textsteps.stopped(ctx)  # "When is it safe to text you?" "No": nothing is booked
    if not is_key(word):
        return textsteps.not_understood(ctx, conversation.at)
    return engine.press(ctx, conversation.at, word)


def decide_stateless(flows: Flows, word: str, ctx: engine.Context, body: str = "") -> Step:
    """Redis is down: 55 / 999 and words of crisis are answered as ever; a top-level choice (a service,
    or 9 for Welsh) still works; anything else gets the menu."""
    if word in engine.POLICE_TEXTS:
        return engine.police(ctx)
    if crisis.is_crisis(body):
        return textsteps.crisis(ctx)
    if LANGUAGE_WORDS.get(word) in flows.config.languages:
        return engine.start(replace(ctx, lang=LANGUAGE_WORDS[word]))
    node = flows.nodes[flows.start]
    if word not in MENU_WORDS and any(o.key == word for o in getattr(node, "options", ())):
        return engine.press(ctx, flows.start, word)
    return engine.start(ctx)


def decide_neutral(word: str, is_stop: bool, cancelled: int | None, ctx: engine.Context,
                   in_crisis: bool = False) -> Step:
    """A text to the follow-up sender: the answers of any automated number (issue 18), but words of crisis
    still get the Samaritans (the contract). Needs no Redis."""
    if is_stop:
        return textsteps.stopped(ctx, True, in_crisis) if cancelled is not None else \
            textsteps.stop_not_recorded(ctx, True, in_crisis)
    if in_crisis:
        return textsteps.crisis_without_menu(ctx)
    if word in engine.POLICE_TEXTS:
        return textsteps.police_discreetly(ctx)
    return textsteps.discreet(ctx)


def texter_language(flows: Flows, arrival: Arrival | None, body: str | None = None) -> str:
    """The language to answer in: a Welsh word we know in the text says Welsh for a stop (`body`);
    else the conversation's (where the texter is in the menu, not anything about texts sent); else the
    default."""
    for lang in (stopwords.language_of(body) if body else None,
                 arrival and arrival.conversation and arrival.conversation.lang):
        if lang and lang in flows.config.languages:
            return lang
    return flows.config.default_language


@bp.post("")
def incoming():
    rt = runtime()
    form = request.form
    sender = form.get("From", "")
    body = form.get("Body", "")
    message_sid = form.get("MessageSid", "")
    number = phone.sender_key(sender)
    word = keyword(body)
    # Twilio's own opt-out (a one-word STOP, or a keyword configured under Advanced Opt-Out) arrives with
    # OptOutType=STOP: Twilio has answered it and refuses our reply (21610), but we must cancel all the
    # same. https://support.twilio.com/hc/en-us/articles/31560110671259
    twilio_opt_out = form.get("OptOutType", "").upper() == "STOP"
    is_stop = twilio_opt_out or stopwords.is_stop(body)
    # Cancelled before anything that can fail; but not again for a MessageSid already answered: a retry
    # (its first answer cancelled already) or a captured text replayed to undo a newer booking (issue 18).
    cancelled = rt.jobs.cancel_followups(number) if is_stop and not rt.conversations.seen_before(message_sid) else 0
    flows = rt.flows.current()
    neutral = followups.is_followup_sender(rt.settings, form, flows.config.sender)  # no Redis: fails closed
    limits = flows.config.limits
    try:
        arrival = rt.conversations.arrive(message_sid, number, limits.reply_window_minutes * 60)
    except StateUnavailable:
        arrival = None
    to_delete = message_sid  # the inbound text, deleted from Twilio once answered (_finish)
    if arrival is not None and arrival.deletion_queued:  # queued with the arrival, in the same round trip
        rt.jobs.deletion_queued(arrival.drain_wanted)
        to_delete = ""
    ctx = engine.Context(flows=flows, channel=engine.SMS, lang=texter_language(flows, arrival),
                         now=rt.clock(), can_text=followups.offerable(rt.settings, flows, sender, form.get("To", "")))
    level = Reply.FULL if arrival is None else reply_level(limits, arrival.sender_count, arrival.global_count)
    in_crisis = crisis.is_crisis(body)
    urgent = is_stop or in_crisis or word in engine.POLICE_TEXTS or bool(HELP_WORDS & set(stopwords.words(body)))
    if level is Reply.SILENT and urgent and rt.conversations.urgent_allowed(number, limits.urgent_replies_per_minute):
        level = Reply.ADVICE  # never silent to 999, 55, help, a stop or crisis (issue 19): a few a minute

    if is_stop:  # acted on whatever the limits say; answered (in the texter's language) unless silenced
        _forget(number)
        if cancelled is not None:
            rt.jobs.release_followup_limits(sender, flows.services)
        ctx = replace(ctx, lang=texter_language(flows, None if neutral else arrival, body))
        step = decide_neutral(word, True, cancelled, ctx, in_crisis) if neutral else (
            textsteps.stopped(ctx, in_crisis=in_crisis) if cancelled is not None else
            textsteps.stop_not_recorded(ctx, in_crisis=in_crisis))
        return _finish(step, to_delete, silent=level is Reply.SILENT or twilio_opt_out)
    if level is Reply.SILENT:
        return _finish(None, to_delete)
    if neutral:
        ctx = replace(ctx, lang=texter_language(flows, None, body))
        return _finish(decide_neutral(word, False, 0, ctx, in_crisis), to_delete)
    if phone.is_landline(sender):  # may be read aloud to the household: no menu, no way into one, at
        # any level of the limits (the advice-only answers below offer the menu)
        if LANGUAGE_WORDS.get(word) in flows.config.languages or stopwords.language_of(body):
            ctx = replace(ctx, lang=LANGUAGE_WORDS.get(word) or stopwords.language_of(body))
        step = textsteps.police_discreetly(ctx) if word in engine.POLICE_TEXTS else \
            textsteps.crisis_without_menu(ctx) if in_crisis else textsteps.landline(ctx)
        return _finish(step, to_delete)
    if level is Reply.ADVICE:  # past the sender's full replies: the advice, or what an urgent text needs
        step = textsteps.crisis(ctx) if in_crisis else engine.police(ctx) if urgent else textsteps.safety_only(ctx)
        return _finish(step, to_delete)
    if arrival is None:
        return _finish(decide_stateless(flows, word, ctx, body), to_delete)
    conversation = arrival.conversation
    if conversation and not engine.known_place(flows, conversation.at):
        conversation = Conversation(at=flows.start, lang=conversation.lang)
    step = decide(flows, word, conversation, arrival.fresh, ctx, body)
    if arrival.fresh and ("sms_stop", "stop") in step.events:
        # "No" to "When is it safe to text you?": answered "we will not text this phone", so make it true
        # for anything booked earlier too, as a stop would (never "cancelled" unless it was).
        if rt.jobs.cancel_followups(number) is None:
            step = textsteps.stop_not_recorded(ctx)
    if arrival.fresh:
        if step.followup:
            step = followups.arrange(rt.jobs, rt.settings, ctx, step, to=sender, called=form.get("To", ""),
                                     trigger=message_sid,
                                     callback=public_base(request, rt.settings) + "/sms/status")
        _remember(number, step, flows)
    return _finish(step, to_delete, count=arrival.fresh)


def _remember(number: str, step: Step, flows: Flows) -> None:
    try:
        if step.at:
            runtime().conversations.save(number, Conversation(step.at, step.lang),
                                         flows.config.sms_state_ttl_minutes * 60)
        else:
            runtime().conversations.forget(number)
    except StateUnavailable:
        log.warning("conversation state not saved: redis unavailable")


def _forget(number: str) -> None:
    """A stop: forget the conversation (its pending follow-ups were cancelled as the text came in)."""
    try:
        runtime().conversations.forget(number)
    except StateUnavailable:
        log.warning("conversation state not forgotten: redis unavailable")


def _finish(step: Step | None, message_sid: str, count: bool = True, silent: bool = False) -> Response:
    """Answer a text: `step` as a reply, or no reply at all (step None, or silent: a sender over its
    limits); either way the inbound text is deleted from Twilio (`message_sid`; '' when its deletion was
    queued with its arrival)."""
    if count and step is not None:
        metrics.count_step(engine.SMS, step)
    if message_sid:
        runtime().jobs.delete_message(message_sid)  # the inbound text, once answered
    if step is None or silent:
        return _xml(NO_REPLY)
    return _xml(render(step))


@bp.post("/status")
def status():
    """Status callback of every message we send: once final, the message is deleted from Twilio."""
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    state = form.get("MessageStatus") or form.get("SmsStatus") or ""
    metrics.count_message_status(state, form.get("ErrorCode"))
    if state in {"sending", "sent"} | FINAL_MESSAGE_STATUSES and request.args.get("f"):
        runtime().jobs.message_reported(request.args["f"])  # a follow-up's own text (router/store/pending.py)
    if sid and state in FINAL_MESSAGE_STATUSES:
        runtime().jobs.delete_message(sid)
    return Response(status=204)
