"""Fallback chains: someone is always there. Every fallback chain ends at a service open 24 hours, a
24-hour line has somewhere to send callers when it is busy, and the emergency service (the one callers
who press nothing are put through to) is open 24 hours.

Named for what it checks (it was checks/safety.py, easy to confuse with the web tier's last-resort
answer, router/web/last_resort.py, which is what a caller hears when our code fails).
"""
from __future__ import annotations

from router.inspect.validation.locate import WARNING, Locator
from router.definition.flowfile import Problem
from router.definition.model import Flows


def check_fallback_chains(flows: Flows, loc: Locator) -> list[Problem]:
    return _fallback_chains(flows, loc) + check_emergency_lines(flows, loc)


def _fallback_chains(flows: Flows, loc: Locator) -> list[Problem]:
    """Every service with hours must fall back, through a chain without cycles, to a 24-hour service."""
    problems, cycles = [], set()
    services = flows.services
    for sid, service in services.items():
        chain = [sid]
        current = service
        while current.fallback in services and current.fallback not in chain:
            chain.append(current.fallback)
            current = services[current.fallback]
        shown = " -> ".join(chain)
        if current.fallback in chain:
            cycle = frozenset(chain[chain.index(current.fallback):])
            if cycle not in cycles:
                cycles.add(cycle)
                problems.append(loc.problem("services.yaml", ("services", current.id, "fallback"),
                                            f"the fallbacks go round in a circle ({shown} -> {current.fallback}): "
                                            "the chain must end at a service open 24 hours"))
            continue
        if current.fallback is not None:
            continue  # an undefined fallback: reported by check_references
        deliberate = current is service and "fallback" in service.model_fields_set  # `fallback: none`
        emergency_lines = {sid for _, sid in flows.config.emergency_lines()}
        if current is service and current.open_24_hours and sid not in emergency_lines and not deliberate:
            problems.append(loc.problem(
                "services.yaml", ("services", sid), "is open 24 hours but has no `fallback`: when its line is "
                "busy or does not answer, callers are offered nothing else", WARNING,
                hint=f"add `fallback: {flows.config.emergency_service}` (or another 24-hour line for the same "
                     "people), or write `fallback: none` and say in a comment why none fits"))
        if not current.open_24_hours:
            if deliberate:
                continue  # `fallback: none`: no line for the same people is open when this one is not
            if current is service:
                reason = ("has opening hours but no `fallback`: while it is closed callers are offered no "
                          "other service. Add `fallback:` with a service open 24 hours for the same people "
                          f"(audience: {service.audience}), or write `fallback: none` and say in a comment why none fits")
                problems.append(loc.problem("services.yaml", ("services", sid), reason, WARNING))
            else:
                problems.append(loc.problem("services.yaml", ("services", sid, "fallback"),
                                            f"the fallback chain {shown} ends at {current.id!r}, which keeps "
                                            "hours and can be closed too: it must end at a service open 24 hours"))
    return problems


def check_emergency_lines(flows: Flows, loc: Locator) -> list[Problem]:
    problems = []
    for path, sid in flows.config.emergency_lines():  # the Welsh line as much as the English one
        emergency = flows.services.get(sid)
        if emergency is not None and not emergency.open_24_hours:
            problems.append(loc.problem("config.yaml", path,
                                        f"{emergency.id!r} is not open 24 hours (`open_24_hours: true`): callers "
                                        "who say nothing and every closed service rely on it at any hour"))
    return problems  # an unknown bank_holiday_region is refused by the schema (model.Config)
