"""Which other lines a caller is offered: open lines for the same people down a service's fallback chain
(at night, the router's own 24-hour lines first), and the line offered after a call that was answered.

Why a module of its own: who is offered what when a line is closed, busy or done is a safeguarding
decision (never a victims' line to someone worried about their own behaviour, never an adult line to
a child; Welsh callers get Wales' own 24-hour line), reviewed apart from how it is worded. Pure
functions of the flows and the engine's Context (flows, lang, now); nothing here says anything.
"""
from __future__ import annotations

from router.definition.model import Service
from router.engine.context import Context


def open_fallback(ctx: Context, service: Service) -> Service | None:
    """The first service down the fallback chain that is open now (the 24-hour helpline ends it)."""
    fallbacks = open_fallbacks(ctx, service, limit=1)
    return fallbacks[0] if fallbacks else None


def open_fallbacks(ctx: Context, service: Service, limit: int = 2) -> list[Service]:
    """The first `limit` services down the fallback chain that are open now. The chain goes from the
    closest fit to the broadest (NSPCC Helpline -> NSPCC FGM Helpline -> National Domestic Abuse
    Helpline), every one for the same people (checked by the lint), so at night a caller hears the
    router's own 24-hour lines for them first. Where the chain reaches the 24-hour helpline, a caller in
    a language with its own 24-hour line is offered that one (Welsh: Live Fear Free)."""
    found: list[Service] = []
    seen = {service.id}
    current = service
    while current.fallback and current.fallback not in seen and len(found) < limit:
        seen.add(current.fallback)
        current = ctx.flows.services[current.fallback]
        # the 24-hour helpline, for a caller in a language with its own (Welsh: Live Fear Free)
        offered = current
        if current.id == ctx.flows.config.emergency_service and ctx.flows.emergency_for(ctx.lang).id != service.id:
            offered = ctx.flows.emergency_for(ctx.lang)
        if offered.schedule.is_open(ctx.now, ctx.region) and offered not in found:
            found.append(offered)
    return found


def after_call_line(ctx: Context, service: Service) -> Service | None:
    """After a call that was answered (perhaps by a recording): the 24-hour line for the same people, or
    the same line again. Adults: the 24-hour helpline for their language; a child or someone worried
    about their own behaviour: only their own line, never another's."""
    line = ctx.flows.emergency_for(ctx.lang) if service.audience == "adults" else service
    return line if line.schedule.is_open(ctx.now, ctx.region) else None
