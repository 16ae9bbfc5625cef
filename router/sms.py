"""The text channel: the same menu tree by numbered replies, with conversation state in Redis.

State is only "where in the menu, which language", under a keyed hash of the number, with a short TTL.
If Redis is down the channel still answers: the top menu and direct service replies need no state.
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace

from flask import Blueprint, Response, request
from twilio.twiml.messaging_response import MessagingResponse

from router import engine, metrics, phone
from router.engine import Step
from router.model import Flows
from router.runtime import runtime
from router.signature import public_base
from router.state import Conversation, StateUnavailable

bp = Blueprint("sms", __name__, url_prefix="/sms")
log = logging.getLogger("router.sms")

FINAL_MESSAGE_STATUSES = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})
STOP_WORDS = frozenset({"STOP", "STOPALL", "END", "QUIT", "CANCEL", "UNSUBSCRIBE", "STOPIO", "DIWEDD", "CANSLO"})
MENU_WORDS = frozenset({"MENU", "HELP", "0", "DEWISLEN", "HELPU", "CYMORTH"})
LANGUAGE_WORDS = {"CYMRAEG": "cy", "WELSH": "cy", "ENGLISH": "en", "SAESNEG": "en"}


def keyword(body: str) -> str:
    """Case- and space-insensitive form of a reply: ' Stop ' -> 'STOP', '2.' -> '2'."""
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


def decide(flows: Flows, word: str, conversation: Conversation | None, fresh: bool,
           ctx: engine.Context) -> Step:
    """The Step for one inbound text, given what Redis remembers. A retried MessageSid (fresh=False)
    gets the answer of where the texter already is, and advances nothing."""
    if conversation is not None:
        ctx = replace(ctx, lang=conversation.lang if conversation.lang in flows.config.languages else ctx.lang)
    if not fresh:
        return engine.present(ctx, conversation.at) if conversation else engine.start(ctx)
    if LANGUAGE_WORDS.get(word) in flows.config.languages:
        return engine.start(replace(ctx, lang=LANGUAGE_WORDS[word]))
    if word in MENU_WORDS or conversation is None:
        return engine.start(ctx)  # a first text of any content gets the advice and the menu
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


@bp.post("")
def incoming():
    rt = runtime()
    form = request.form
    sender = form.get("From", "")
    body = form.get("Body", "")
    message_sid = form.get("MessageSid", "")
    number = phone.sender_key(sender)
    word = keyword(body)
    if word in STOP_WORDS:
        _forget(number)  # before anything that can fail, even having no valid flows
    flows = rt.flows.current()
    default_lang = flows.config.default_language

    if word in STOP_WORDS:
        stopped = engine.Line(flows.phrase("sms_stopped", default_lang), default_lang)
        step = Step(at=None, lang=default_lang, lines=(stopped,), events=(("sms_stop", "stop"),))
        return _finish(step, message_sid)

    ctx = engine.Context(flows=flows, channel=engine.SMS, lang=default_lang, now=rt.clock(),
                         can_text=phone.TextableLater(sender))
    try:
        fresh, conversation = rt.conversations.arrive(message_sid, number)
    except StateUnavailable:
        return _finish(decide_stateless(flows, word, ctx), message_sid)
    if conversation and not engine.known_place(flows, conversation.at):
        conversation = Conversation(at=flows.start, lang=conversation.lang)
    step = decide(flows, word, conversation, fresh, ctx)
    if fresh:
        if step.followup and not rt.jobs.schedule_followup(
                to=sender, from_=form.get("To", ""), trigger=message_sid, followup=step.followup,
                callback=public_base(request, rt.settings) + "/sms/status"):
            step = engine.followup_not_arranged(replace(ctx, lang=step.lang), step.followup.service_id)
        _remember(number, step, flows)
    return _finish(step, message_sid, count=fresh)


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
    """STOP: forget the conversation and cancel anything pending for this number, at once."""
    try:
        runtime().conversations.forget(number)
    except StateUnavailable:
        log.warning("conversation state not forgotten: redis unavailable")
    runtime().jobs.cancel_followups(number)


def _finish(step: Step, message_sid: str, count: bool = True) -> Response:
    if count:
        metrics.count_step(engine.SMS, step)
    if message_sid:
        runtime().jobs.delete_message(message_sid)  # the inbound text, once answered
    return _xml(render(step))


@bp.post("/status")
def status():
    """Status callback of every message we send: once final, the message is deleted from Twilio."""
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    state = form.get("MessageStatus") or form.get("SmsStatus") or ""
    metrics.count_message_status(state)
    if state in {"sending", "sent"} | FINAL_MESSAGE_STATUSES and request.args.get("f"):
        runtime().jobs.message_reported(request.args["f"])  # a follow-up's own text (tasks/pending.py)
    if sid and state in FINAL_MESSAGE_STATUSES:
        runtime().jobs.delete_message(sid)
    return Response(status=204)
