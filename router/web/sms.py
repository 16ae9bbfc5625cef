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

What a text says and which answer it gets are the engine's rules (router/engine/texting.py); this
blueprint gathers the situation (state, limits, the sender, who it was sent to), acts (cancels, stores
where the texter is) and renders the answer.
"""
from __future__ import annotations

import logging
from dataclasses import replace

from flask import Blueprint, Response, request
from twilio.twiml.messaging_response import MessagingResponse

from router import engine, metrics
from router.definition import phone
from router.definition.model import Flows
from router.engine import Step, Text, stopwords, texting
from router.engine import texts as textsteps
from router.engine.texting import Reading
from router.store.limits import Reply, reply_level
from router.store.conversations import Conversation
from router.store.connection import StateUnavailable
from router.web import followups
from router.web.runtime import runtime
from router.web.signature import public_base

bp = Blueprint("sms", __name__, url_prefix="/sms")
log = logging.getLogger("router.web.sms")

FINAL_MESSAGE_STATUSES = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})
STOP_WORDS = stopwords.STOP_WORDS  # a stop is recognised by stopwords.is_stop, however it is typed
NO_REPLY = str(MessagingResponse())  # valid TwiML that sends nothing


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


@bp.post("")
def incoming():
    rt = runtime()
    form = request.form
    sender = form.get("From", "")
    message_sid = form.get("MessageSid", "")
    number = phone.sender_key(sender)
    # Twilio's own opt-out (a one-word STOP, or a keyword configured under Advanced Opt-Out) arrives with
    # OptOutType=STOP: Twilio has answered it and refuses our reply (21610), but we must cancel all the
    # same. https://support.twilio.com/hc/en-us/articles/31560110671259
    twilio_opt_out = form.get("OptOutType", "").upper() == "STOP"
    reading = Reading(Text(form.get("Body", "")), opted_out=twilio_opt_out)
    # Cancelled before anything that can fail; but not again for a MessageSid already answered: a retry
    # (its first answer cancelled already) or a captured text replayed to undo a newer booking (issue 18).
    cancelled = rt.jobs.cancel_followups(number) if reading.is_stop and not rt.conversations.seen_before(message_sid) \
        else 0
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
    conversation = arrival.conversation if arrival else None
    ctx = engine.Context(flows=flows, channel=engine.SMS,
                         lang=texting.texter_language(flows, conversation.lang if conversation else None),
                         now=rt.clock(), can_text=followups.offerable(rt.settings, flows, sender, form.get("To", "")))
    level = Reply.FULL if arrival is None else reply_level(limits, arrival.sender_count, arrival.global_count)
    if level is Reply.SILENT and reading.urgent \
            and rt.conversations.urgent_allowed(number, limits.urgent_replies_per_minute):
        level = Reply.ADVICE  # never silent to 999, 55, help, a stop or crisis (issue 19): a few a minute

    if reading.is_stop:  # acted on whatever the limits say; answered (in the texter's language) unless silenced
        _forget(number)
        if cancelled is not None:
            rt.jobs.release_followup_limits(sender, flows.services)
        stop_lang = None if neutral or conversation is None else conversation.lang
        ctx = replace(ctx, lang=texting.texter_language(flows, stop_lang, reading))
        step = texting.decide_neutral(reading, cancelled, ctx) if neutral else \
            texting.decide_stop(reading, cancelled, ctx)
        return _finish(step, to_delete, silent=level is Reply.SILENT or twilio_opt_out)
    if level is Reply.SILENT:
        return _finish(None, to_delete)
    if neutral:
        ctx = replace(ctx, lang=texting.texter_language(flows, None, reading))
        return _finish(texting.decide_neutral(reading, 0, ctx), to_delete)
    if phone.is_landline(sender):  # may be read aloud to the household: no menu, no way into one, at
        # any level of the limits (the advice-only answers below offer the menu)
        return _finish(texting.decide_landline(reading, ctx), to_delete)
    if level is Reply.ADVICE:  # past the sender's full replies: the advice, or what an urgent text needs
        return _finish(texting.decide_advice_only(reading, ctx), to_delete)
    if arrival is None:
        return _finish(texting.decide_stateless(flows, reading, ctx), to_delete)
    at = conversation.at if conversation else None
    if at is not None and not engine.known_place(flows, at):
        at = flows.start
    step = texting.decide(flows, reading, at, arrival.fresh, ctx)
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
        runtime().jobs.message_reported(request.args["f"])  # a follow-up's own text (router/store/pending.py)
    if sid and state in FINAL_MESSAGE_STATUSES:
        runtime().jobs.delete_message(sid)
    return Response(status=204)
