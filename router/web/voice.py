"""The voice channel: Twilio's call webhooks in, the engine's Steps out as TwiML (VoiceResponse).

Twilio's form is translated here into the engine's typed inputs (router/engine/inputs.py: Keys,
Silence, DialResult); the engine reads no form field.

Where the caller is lives only in the action URLs (?at=<place>&lang=<code>), so any web process can
answer any step of any call and nothing about a call is stored. Those URLs hold only characters that
never need percent-encoding (letters, digits, `_ . -`, and `/ ? = &`): Twilio may request a URL with a
character such as `:` encoded while signing another form of it
(https://www.twilio.com/docs/usage/webhooks/webhooks-security; error 57012 lists "URL-encoded
characters" among the causes of a signature that does not match), so the engine's "closed:galop" is
written "closed.galop" in a URL (`url_place`). Each keypad action URL also carries a binding to its call
and the time (router/web/replay.py, digits, hex and `-`): a replayed "press 8" or "yes, text me" changes nothing.

Caller ID is not proof (issue 18): no answer on a call depends on what is stored for the calling number.
Key 8 on the main menu cancels any text due to the caller on every call, unannounced (the person is told
of it when they book one), and says the same words whether or not one was pending.
"""
from __future__ import annotations

from flask import Blueprint, Response, request, url_for
from twilio.twiml.voice_response import VoiceResponse

from router import engine, metrics
from router.web import followups, last_resort, replay
from router.engine import DialResult, Keys, Line, Silence, Step
from router.definition.model import Flows
from router.web.runtime import Runtime, runtime
from router.web.signature import public_base

bp = Blueprint("voice", __name__, url_prefix="/voice")
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def twiml(document: str) -> Response:
    return Response(document, mimetype="application/xml")


def _context(flows: Flows, lang: str | None, rt: Runtime | None = None) -> engine.Context:
    lang = lang if lang in flows.config.languages else flows.config.default_language
    rt = rt or runtime()
    return engine.Context(flows=flows, channel=engine.VOICE, lang=lang, now=rt.clock(),
                          can_text=followups.offerable(rt.settings, flows, request.form.get("From"),
                                                       request.form.get("To", "")))


PLACE_SEPARATOR, URL_SEPARATOR = ":", "."  # node and service ids never hold a "." (model.ID_PATTERN)


def url_place(at: str) -> str:
    """An engine place as written in an action URL: "closed:galop" -> "closed.galop"."""
    return at.replace(PLACE_SEPARATOR, URL_SEPARATOR)


def place_from_url(value: str | None) -> str | None:
    """The engine place an action URL names (URLs from before this change, with ":", still work)."""
    return value.replace(URL_SEPARATOR, PLACE_SEPARATOR) if value else value


def _say(target, line: Line, flows: Flows) -> None:
    voice = flows.config.voices.get(line.lang) or flows.config.voices[flows.config.default_language]
    if line.slow:
        target.say(voice=voice.voice, language=voice.language).prosody(line.text, rate="90%")
    else:
        target.say(line.text, voice=voice.voice, language=voice.language)


_rendered: dict[tuple, str] = {}
RENDER_CACHE_SIZE = 2048


def render(step: Step, flows: Flows, next_silence: int = 1) -> str:
    """A Step as TwiML. The engine is pure and a Step holds no caller data, so the same Step under the
    same flows always renders the same document: keep the most recent ones (they are few: menus)."""
    key = (flows.version, request.script_root, step, next_silence)
    document = _rendered.get(key)
    if document is None:
        document = _render(step, flows, next_silence)
        if len(_rendered) >= RENDER_CACHE_SIZE:
            _rendered.clear()
        _rendered[key] = document
    return document


WINDOW_SECONDS = 2
"""How long after the first words of the answer to a 5 or a 9 a second 5 or 9 still counts as 5 5 / 9 9 9."""


def _render(step: Step, flows: Flows, next_silence: int) -> str:
    """Words, then a keypad Gather (with a Redirect for silence), a Dial, or a hang-up.

    After a 5 or a 9 the first line is said inside a short Gather of its own (the window): a second
    key there comes back with k=<first key>, so 5 5 and 9 9 9 are recognised without making every
    single key press wait for a second digit. With no key, Twilio goes on to the rest of the document.

    Lines to be heard whole (the police advice that 5 5 / 9 9 9 leads to) are said before the Gather,
    outside it: a <Say> nested in a <Gather> stops at the first key
    (https://www.twilio.com/docs/voice/twiml/gather, "Nest other verbs"), and the rest of a burst of
    keys would cut the advice off. Only the choices after it are inside the Gather.

    The Gather has no finishing key (finishOnKey=""), so "#" comes back as a key like any other
    (Twilio's default would end the input empty-handed and the caller would hear "We did not hear a
    key")."""
    response = VoiceResponse()
    lines = [line for line in step.lines + step.choices if line.text]
    if step.window and step.window_at and lines:
        window = response.gather(
            input="dtmf", num_digits=1, timeout=WINDOW_SECONDS, action_on_empty_result=False, finish_on_key="",
            action=url_for("voice.key", at=url_place(step.window_at), lang=step.lang, k=step.window,
                           o=step.window_lang))
        _say(window, lines.pop(0), flows)
    while lines and lines[0].whole:
        _say(response, lines.pop(0), flows)
    target = response
    if step.choices and step.at:
        target = response.gather(
            input="dtmf", num_digits=1, timeout=flows.config.gather_timeout_seconds, finish_on_key="",
            action=url_for("voice.key", at=url_place(step.at), lang=step.lang), action_on_empty_result=False)
    for line in lines:
        _say(target, line, flows)
    if step.choices and step.at:
        response.redirect(url_for("voice.silence", at=url_place(step.at), lang=step.lang, n=next_silence))
    elif step.dial:
        dial = response.dial(action=url_for("voice.dialled", service=step.dial.service_id, lang=step.lang),
                             timeout=step.dial.timeout, answer_on_bridge=True)
        dial.number(step.dial.number)
    else:
        response.hangup()
    return str(response)


def _answer(step: Step, flows: Flows, next_silence: int = 1) -> Response:
    if step.followup:
        rt, form = runtime(), request.form
        step = followups.arrange(rt.jobs, rt.settings, _context(flows, step.lang, rt), step,
                                 to=form.get("From", ""), called=form.get("To", ""),
                                 trigger=form.get("CallSid", ""),
                                 callback=public_base(request, rt.settings) + "/sms/status")
    if step.events:
        metrics.count_step(engine.VOICE, step)
    rt = runtime()
    binding = replay.token(rt.settings.state_key_secret(), request.form.get("CallSid", ""), rt.clock().timestamp())
    return twiml(replay.bind_actions(render(step, flows, next_silence), binding))


def _bound(rt: Runtime) -> bool:
    """This key press comes from the document made for this very call, minutes ago (router/web/replay.py).
    A URL without `b` was never in a document of ours since bindings began (Twilio signs the URL it
    requests, so nobody without the auth token can strip `b` off a captured one): it is let through, so
    calls in progress across the upgrade, and tests that post to a place directly, still work."""
    binding, call_sid = request.args.get("b"), request.form.get("CallSid", "")
    if binding is not None and not replay.is_bound(rt.settings.state_key_secret(), call_sid, binding,
                                                   rt.clock().timestamp()):
        return False
    return not _ended_calls(rt).has_ended(call_sid)


def _ended_calls(rt: Runtime) -> replay.EndedCalls:
    return replay.EndedCalls(rt.conversations.client, rt.settings.state_key_secret())


@bp.post("")
def incoming():
    rt = runtime()
    flows = rt.flows.current()
    ctx = _context(flows, flows.config.default_language, rt)
    return _answer(engine.start(ctx), flows)


@bp.post("/key")
def key():
    rt = runtime()
    flows = rt.flows.current()
    args = request.args
    ctx = _context(flows, args.get("lang"), rt)
    at = place_from_url(args.get("at"))
    recent = args.get("k", "")
    keys = Keys(request.form.get("Digits", ""), recent=recent if len(recent) == 1 else "",
                recent_lang=args.get("o", ""))
    if engine.cancels_texts(flows, at, keys):
        return _answer(_cancel_by_key(rt, flows, ctx), flows)
    step = engine.resume(ctx, at, keys)
    if step.followup and not _bound(rt):  # a replayed or stale "yes": nothing is booked, the question again
        step = engine.present(ctx, at or flows.start)
    return _answer(step, flows)


def _cancel_by_key(rt: Runtime, flows: Flows, ctx: engine.Context) -> Step:
    """Key 8 on the main menu: cancel every text due to the caller, and say the same words whether or
    not one was pending. A replayed or stale request cancels nothing (the menu again); a cancellation
    Redis could not record is never called done."""
    if not _bound(rt):
        return engine.present(ctx, flows.start)
    caller = request.form.get("From", "")
    if rt.jobs.cancel_followups(caller) is None:
        return engine.cancel_not_recorded(ctx)
    rt.jobs.release_followup_limits(caller, flows.services)
    return engine.cancelled_by_key(ctx)


@bp.post("/silence")
def silence():
    flows = runtime().flows.current()
    attempt = request.args.get("n", "1")
    attempt_n = int(attempt) if attempt.isdecimal() and len(attempt) <= 3 else 2
    step = engine.resume(_context(flows, request.args.get("lang")), place_from_url(request.args.get("at")),
                         Silence(attempt_n))
    return _answer(step, flows, next_silence=attempt_n + 1)


@bp.post("/dialled")
def dialled():
    flows = runtime().flows.current()
    ctx = _context(flows, request.args.get("lang"))
    status = request.form.get("DialCallStatus", "failed")
    dial_sid = request.form.get("DialCallSid", "")
    if dial_sid:  # the outbound leg has ended: delete its record now, not at the sweep (retried until final)
        runtime().jobs.delete_call(dial_sid)
    return _answer(engine.resume(ctx, None, DialResult(request.args.get("service", ""), status)), flows)


@bp.post("/safety-connect")
def safety_connect():
    """Reached only from the safety TwiML: put the caller through to the 24-hour helpline, no matter what."""
    return twiml(last_resort.CONNECT_TWIML)


@bp.post("/status")
def status():
    """The call's status callback: once it has ended, its record is deleted from Twilio."""
    call_sid = request.form.get("CallSid", "")
    if request.form.get("CallStatus") in FINAL_CALL_STATUSES and call_sid:
        _ended_calls(runtime()).mark(call_sid)  # its key presses, replayed, change nothing (router/web/replay.py)
        runtime().jobs.delete_call(call_sid)
    return Response(status=204)
