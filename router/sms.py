"""The text channel: the same menu tree by numbered replies, with conversation state in Redis.

State is only "where in the menu, which language", under a keyed hash of the number, with a short TTL.
If Redis is down the channel still answers: the top menu and direct service replies need no state.

A text can reach a phone someone else holds, so (issue 12): a stop however typed (router/stopwords.py)
cancels everything pending for the number and is answered in one line, never the menu; a phone that was
sent a follow-up lately gets only a discreet answer unless it asks for MENU or HELP; free text gets the
999 advice, "nobody reads these texts" and the menu; and one sender's texts get full answers, then the
999 advice only, then none (router/limits.py), while a stop is always acted on.
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace

from flask import Blueprint, Response, request
from twilio.twiml.messaging_response import MessagingResponse

from router import engine, followups, metrics, phone, stopwords
from router.engine import Step
from router.limits import Reply, reply_level
from router.model import Flows
from router.runtime import runtime
from router.signature import public_base
from router.state import Arrival, Conversation, StateUnavailable

bp = Blueprint("sms", __name__, url_prefix="/sms")
log = logging.getLogger("router.sms")

FINAL_MESSAGE_STATUSES = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})
STOP_WORDS = stopwords.STOP_WORDS  # a stop is recognised by stopwords.is_stop, however it is typed
NO_REPLY = str(MessagingResponse())  # valid TwiML that sends nothing
MENU_WORDS = frozenset({"MENU", "HELP", "0", "DEWISLEN", "HELPU", "CYMORTH"})
LANGUAGE_WORDS = {"CYMRAEG": "cy", "WELSH": "cy", "ENGLISH": "en", "SAESNEG": "en"}


def keyword(body: str) -> str:
    """Case-, space- and width-insensitive form of a reply: ' Stop ' -> 'STOP', '2.' -> '2', 'ＭＥＮＵ' ->
    'MENU' (folded as stop words are, stopwords.fold); '*' and '#' stay themselves."""
    folded = "".join(stopwords.words(body))
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
           ctx: engine.Context, recent: bool = False) -> Step:
    """The Step for one inbound text, given what Redis remembers (ctx.lang is already the texter's).
    A retried MessageSid (fresh=False) gets the answer of where the texter already is, and advances
    nothing. A phone we sent a follow-up to lately (`recent`), outside a conversation, gets only the
    discreet answer unless it asks for the MENU or HELP: whoever holds it may not be who asked."""
    if not fresh:
        return engine.present(ctx, conversation.at) if conversation else engine.start(ctx)
    if word in engine.POLICE_TEXTS:  # 55 / 999, following the 999 advice: always how to reach the police
        return engine.police(ctx)
    if conversation is None and recent and word not in MENU_WORDS:
        return engine.discreet(ctx)
    if LANGUAGE_WORDS.get(word) in flows.config.languages:
        return engine.start(replace(ctx, lang=LANGUAGE_WORDS[word]))
    if word in MENU_WORDS or conversation is None or not is_key(word):
        return engine.start(ctx)  # a first text, or free text: the advice, "nobody reads this", the menu
    return engine.press(ctx, conversation.at, word)


def decide_stateless(flows: Flows, word: str, ctx: engine.Context) -> Step:
    """Redis is down: a top-level choice (a service, or 9 for Welsh) still works; anything else gets
    the menu."""
    if LANGUAGE_WORDS.get(word) in flows.config.languages:
        return engine.start(replace(ctx, lang=LANGUAGE_WORDS[word]))
    node = flows.nodes[flows.start]
    if word not in MENU_WORDS and any(o.key == word for o in getattr(node, "options", ())):
        return engine.press(ctx, flows.start, word)
    return engine.start(ctx)


def texter_language(flows: Flows, arrival: Arrival | None, stop_body: str | None = None) -> str:
    """The language to answer in: for a stop, a Welsh stop word says Welsh; else the conversation's;
    else that of the follow-up this number was sent lately; else the default."""
    for lang in (stopwords.language_of(stop_body) if stop_body else None,
                 arrival and arrival.conversation and arrival.conversation.lang,
                 arrival and arrival.recent_lang):
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
    is_stop = stopwords.is_stop(body)
    if is_stop:  # cancelled before anything that can fail, even having no valid flows
        rt.jobs.cancel_followups(number)
    flows = rt.flows.current()
    limits = flows.config.limits
    try:
        arrival = rt.conversations.arrive(message_sid, number, limits.reply_window_minutes * 60)
    except StateUnavailable:
        arrival = None
    ctx = engine.Context(flows=flows, channel=engine.SMS, lang=texter_language(flows, arrival),
                         now=rt.clock(), can_text=followups.offerable(rt.settings, flows, sender, form.get("To", "")))
    level = Reply.FULL if arrival is None else reply_level(limits, arrival.sender_count, arrival.global_count)

    if is_stop:  # acted on whatever the limits say; answered (in the texter's language) unless silenced
        _forget(number)
        rt.jobs.release_followup_limits(sender, flows.services)
        ctx = replace(ctx, lang=texter_language(flows, arrival, stop_body=body))
        return _finish(engine.stopped(ctx), message_sid, silent=level is Reply.SILENT)
    if level is Reply.SILENT:
        return _finish(None, message_sid)
    if level is Reply.ADVICE:
        return _finish(engine.safety_only(ctx), message_sid)
    if arrival is None:
        return _finish(decide_stateless(flows, word, ctx), message_sid)
    conversation = arrival.conversation
    if conversation and not engine.known_place(flows, conversation.at):
        conversation = Conversation(at=flows.start, lang=conversation.lang)
    recent = arrival.recent_lang is not None or _to_neutral_sender(rt, flows, form.get("To", ""))
    step = decide(flows, word, conversation, arrival.fresh, ctx, recent=recent)
    if arrival.fresh:
        if step.followup:
            step = followups.arrange(rt.jobs, rt.settings, ctx, step, to=sender, called=form.get("To", ""),
                                     trigger=message_sid,
                                     callback=public_base(request, rt.settings) + "/sms/status")
        _remember(number, step, flows)
    return _finish(step, message_sid, count=arrival.fresh)


def _to_neutral_sender(rt, flows: Flows, to: str) -> bool:
    """A text to the separate number follow-ups come from (when one is set): whoever texts it is
    answering a follow-up, so it is answered as discreetly as a phone we texted lately."""
    neutral = followups.sender(rt.settings, flows, "")
    return bool(neutral) and to == neutral


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
    limits); either way the inbound text is deleted from Twilio."""
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
        runtime().jobs.message_reported(request.args["f"])  # a follow-up's own text (tasks/pending.py)
    if sid and state in FINAL_MESSAGE_STATUSES:
        runtime().jobs.delete_message(sid)
    return Response(status=204)
