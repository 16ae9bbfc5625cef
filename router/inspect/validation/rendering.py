"""Every reply the router can give, rendered through the engine itself: each text at each place a
texter can reach, each follow-up text, and a walk of every key at every place a caller can reach.

The sizes and encodings checks (sizes.py) judge these texts; a walk that raises is a place where a
caller would get the safety TwiML instead of an answer.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Iterable, Iterator

from router import engine
from router.definition import hours as hours_mod
from router.definition.model import Flows, MenuNode

# The clocks every text is rendered at (London time): a weekday noon (most services open), a weeknight
# 03:00 (closed, "opens today"), late evening ("opens tomorrow"), a Saturday night ("opens on Monday")
# and Christmas Day, a bank holiday on a Friday ("opens on Tuesday").
CLOCKS: tuple[datetime, ...] = tuple(
    datetime(*parts, tzinfo=hours_mod.LONDON) for parts in
    ((2026, 11, 18, 12, 0), (2026, 11, 18, 3, 0), (2026, 11, 18, 22, 30), (2026, 11, 21, 3, 0),
     (2026, 12, 25, 12, 0)))

# Calls are walked only to find places the engine cannot answer: open, closed at night, a bank holiday.
VOICE_CLOCKS = (CLOCKS[0], CLOCKS[1], CLOCKS[4])


class _Traced(str):
    """Text that remembers which phrase it was made from, to tell an operator what to shorten."""

    phrase_id: str = ""


class _TracingFlows(Flows):
    def phrase(self, phrase_id: str, lang: str, /, **values: object) -> str:
        text = _Traced(super().phrase(phrase_id, lang, **values))
        text.phrase_id = phrase_id
        return text


def tracing(flows: Flows) -> Flows:
    """The same flows, with phrases that remember their id (Service caches its own schedule)."""
    if isinstance(flows, _TracingFlows):
        return flows
    return _TracingFlows(**{f.name: getattr(flows, f.name) for f in fields(flows) if f.init})


@dataclass(frozen=True)
class Reply:
    """One text the router can send, and how it comes about."""

    text: str
    parts: tuple[tuple[str, str], ...]   # (phrase id or "", text) per line, in order
    lang: str
    at: str | None                       # where the texter is after it (None: the conversation ended)
    trigger: str                         # what the texter sent, in words
    can_text: bool
    now: datetime


def sms_text(step: engine.Step) -> str:
    """Exactly what router/web/sms.py's render() puts in the <Message>."""
    return "\n".join(line.text for line in step.lines + step.choices if line.text)


def _reply(step: engine.Step, trigger: str, ctx: engine.Context) -> Reply:
    parts = tuple((getattr(line.text, "phrase_id", ""), str(line.text))
                  for line in step.lines + step.choices if line.text)
    return Reply(sms_text(step), parts, step.lang, step.at, trigger, bool(ctx.can_text), ctx.now)


ENGINE_PLACE_KEYS = ("1", "2", "3", "8", "9")  # fallback, follow-up, when-choices, SMS follow-up, menu


def keys_to_try(flows: Flows, at: str) -> list[str]:
    """The keys that mean something at `at`, plus 0 (repeat) and one that means nothing.

    At a menu: its option keys. At one of the engine's places after a service: the engine's own keys
    (any other key there behaves as at the start menu, which is tried on its own)."""
    node = flows.nodes.get(at)
    keys = [o.key for o in node.options] if isinstance(node, MenuNode) else list(ENGINE_PLACE_KEYS)
    return keys + ["0", "x", "55"]  # 55: a texter following the 999 advice


def sms_replies(flows: Flows, clocks: Iterable[datetime] = CLOCKS) -> Iterator[Reply]:
    """Every text reply the engine can produce: from the first text, every reply at every place a
    texter can reach, in every language, for texters who can and cannot get follow-ups, at each clock."""
    flows = tracing(flows)
    for now in clocks:
        for can_text in (True, False):
            contexts = {lang: engine.Context(flows, engine.SMS, lang, now, can_text)
                        for lang in flows.config.languages}
            todo: list[tuple[str, str]] = []
            seen: set[tuple[str, str]] = set()

            def visit(step: engine.Step, trigger: str, ctx: engine.Context,
                      seen: set[tuple[str, str]] = seen, todo: list[tuple[str, str]] = todo) -> Iterator[Reply]:
                yield _reply(step, trigger, ctx)
                if step.at and (step.lang, step.at) not in seen:
                    seen.add((step.lang, step.at))
                    todo.append((step.lang, step.at))

            for ctx in contexts.values():
                yield from visit(engine.start(ctx), "a first text", ctx)
            while todo:
                lang, at = todo.pop()
                for key in keys_to_try(flows, at):
                    yield from visit(engine.resume(contexts[lang], at, engine.Keys(key)), f"a reply of {key!r} at {at}",
                                     contexts[lang])


def followup_texts(flows: Flows) -> Iterator[tuple[str, str, str]]:
    """(service id, language, body) of the follow-up text for every service, as schedule_followup writes it."""
    for lang in flows.config.languages:
        ctx = engine.Context(flows, engine.SMS, lang, CLOCKS[0], True)
        for sid, service in flows.services.items():
            followup = engine.schedule_followup(ctx, service, "later").followup
            assert followup is not None, "a service's follow-up is always written when it is booked"
            yield sid, lang, followup.body


def voice_walk(flows: Flows, clocks: Iterable[datetime] = CLOCKS) -> Iterator[tuple[str, str, datetime]]:
    """Press every key, stay silent and end every dial at every place a caller can reach, so a place
    the engine cannot answer is found here and not by a caller (who would get the safety TwiML).

    Yields (place, what happens, clock) before each engine call, so a failure can be located."""
    for now in clocks:
        for can_text in (True, False):
            todo = [(lang, flows.start) for lang in flows.config.languages]
            seen = set(todo)
            for lang in flows.config.languages:
                yield flows.start, "a new call", now
                engine.start(engine.Context(flows, engine.VOICE, lang, now, can_text))
            while todo:
                lang, at = todo.pop()
                ctx = engine.Context(flows, engine.VOICE, lang, now, can_text)
                steps = []
                for key in keys_to_try(flows, at):
                    yield at, f"key {key}", now
                    steps.append(engine.resume(ctx, at, engine.Keys(key)))
                for key in sorted(engine.WINDOW_KEYS):  # the second key of 5 5 or 9 9 9
                    yield at, f"key {key} twice", now
                    steps.append(engine.resume(ctx, at, engine.Keys(key, recent=key, recent_lang=lang)))
                yield at, "silence", now
                steps += [engine.resume(ctx, at, engine.Silence(1)), engine.resume(ctx, at, engine.Silence(2))]
                for dial in [step.dial for step in steps if step.dial]:
                    for status in ("completed", "busy", "no-answer"):
                        yield at, f"dialling {dial.service_id} ({status})", now
                        steps.append(engine.resume(ctx, at, engine.DialResult(dial.service_id, status)))
                for step in steps:
                    if step.dial and (step.lang, f"dial:{step.dial.service_id}") not in seen:
                        seen.add((step.lang, f"dial:{step.dial.service_id}"))
                        todo.append((step.lang, f"dial:{step.dial.service_id}"))
                    if step.at and (step.lang, step.at) not in seen:
                        seen.add((step.lang, step.at))
                        todo.append((step.lang, step.at))
