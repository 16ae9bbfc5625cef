"""The menu tree's structure: every reference exists, every node is reachable and can be left, a key
does one thing.

A name written wrong (`next:`, `service:`, `fallback:`) or a menu no caller can leave would strand a
caller; these checks find it before the app is asked to serve it.
"""
from __future__ import annotations

from typing import Iterable

from router import engine
from router.inspect.validation.locate import WARNING, Locator
from router.definition.flowfile import Problem
from router.definition.model import ConnectNode, EndNode, Flows, MenuNode, SayNode


def check_references(flows: Flows, loc: Locator) -> list[Problem]:
    """A node, menu start, service or fallback named somewhere but never defined."""
    problems = []
    nodes, services = flows.nodes, flows.services
    if flows.start not in nodes:
        problems.append(loc.problem("menu.yaml", ("start",), f"the start node {flows.start!r} is not defined "
                                    f"under nodes ({_known(nodes)})"))
    for node_id, node in nodes.items():
        if isinstance(node, MenuNode):
            for i, option in enumerate(node.options):
                if option.next is not None and option.next not in nodes:
                    problems.append(loc.problem("menu.yaml", ("nodes", node_id, "options", i, "next"),
                                                f"goes to {option.next!r}, which is not defined under nodes "
                                                f"({_known(nodes)})"))
        elif isinstance(node, SayNode) and node.next is not None and node.next not in nodes:
            problems.append(loc.problem("menu.yaml", ("nodes", node_id, "next"),
                                        f"goes to {node.next!r}, which is not defined under nodes"))
        elif isinstance(node, ConnectNode):
            named: list[tuple[tuple[str, ...], str]] = [(("nodes", node_id, "service"), node.service)]
            named += [(("nodes", node_id, "by_language", lang), sid) for lang, sid in (node.by_language or {}).items()]
            for path, sid in named:
                if sid not in services:
                    problems.append(loc.problem("menu.yaml", path, f"service {sid!r} is not defined in "
                                                f"services.yaml ({_known(services)})"))
    for sid, service in services.items():
        if service.fallback is not None and service.fallback not in services:
            problems.append(loc.problem("services.yaml", ("services", sid, "fallback"),
                                        f"fallback {service.fallback!r} is not a service defined in this file"))
    for path, sid in flows.config.emergency_lines():
        if sid not in services:
            problems.append(loc.problem("config.yaml", path, f"{sid!r} is not a service defined in services.yaml"))
    return problems


def _known(ids: Iterable[str]) -> str:
    names = sorted(ids)
    return "defined: " + ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")


# ------------------------------------------------------------------ the menu tree
def node_edges(flows: Flows) -> dict[str, list[str]]:
    """Where a caller can go from each node. A language option starts the menu again in the new language."""
    edges: dict[str, list[str]] = {}
    for node_id, node in flows.nodes.items():
        targets: list[str] = []
        if isinstance(node, MenuNode):
            for option in node.options:
                targets.append(option.next if option.next is not None else flows.start)
        elif isinstance(node, SayNode) and node.next is not None:
            targets.append(node.next)
        edges[node_id] = [t for t in targets if t in flows.nodes]
    return edges


def reachable(edges: dict[str, list[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node in seen or node not in edges:
            continue
        seen.add(node)
        todo.extend(edges[node])
    return seen


def check_menu_tree(flows: Flows, loc: Locator) -> list[Problem]:
    """Unreachable nodes, dead ends, loops with no way out, two options on one key."""
    problems: list[Problem] = []
    edges = node_edges(flows)
    if flows.start not in flows.nodes:
        return problems
    seen = reachable(edges, flows.start)
    for node_id, node in flows.nodes.items():
        path = ("nodes", node_id)
        if node_id not in seen:
            problems.append(loc.problem("menu.yaml", path, "no caller can reach this node: no option or "
                                        "`next` leads here from the start node", WARNING))
        if isinstance(node, SayNode) and node.next is None:
            problems.append(loc.problem("menu.yaml", path, "is a dead end: callers hear it and are then hung "
                                        "up on. Give it `next:` (where to go after), or make it `type: end` "
                                        "if ending the call here is intended"))
        if isinstance(node, MenuNode):
            problems += _duplicate_keys(node_id, node, loc)
    start_node = flows.nodes[flows.start]
    if isinstance(start_node, EndNode):
        problems.append(loc.problem("menu.yaml", ("start",), "the start node is an end node: every caller "
                                    "would hear only the safety advice and be hung up on"))
    problems += _say_cycles(flows, loc)
    problems += _trapped(flows, edges, seen, loc)
    if isinstance(start_node, MenuNode):
        for i, option in enumerate(start_node.options):
            if option.key == engine.SMS_FOLLOWUP_KEY:
                problems.append(loc.problem(
                    "menu.yaml", ("nodes", flows.start, "options", i, "key"),
                    f"after a service's details by text, a reply of {engine.SMS_FOLLOWUP_KEY} asks for a "
                    f"follow-up text, so texters cannot choose this option straight from there", WARNING))
    return problems


def _duplicate_keys(node_id: str, node: MenuNode, loc: Locator) -> list[Problem]:
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for i, option in enumerate(node.options):
        if option.key in first:
            j = first[option.key]
            problems.append(loc.problem(
                "menu.yaml", ("nodes", node_id, "options", i, "key"),
                f"key {option.key} is already used by option {j + 1} of this menu "
                f"(line {loc.line('menu.yaml', ('nodes', node_id, 'options', j, 'key'))}): a key can do one "
                f"thing only, and callers would never reach this option"))
        else:
            first[option.key] = i
    return problems


def _say_cycles(flows: Flows, loc: Locator) -> list[Problem]:
    """Say nodes whose `next` lead back to themselves with no menu between: the engine would loop forever."""
    problems, reported = [], set()
    for node_id, node in flows.nodes.items():
        chain, current = [node_id], node
        while isinstance(current, SayNode) and current.next in flows.nodes:
            if current.next in chain:
                cycle = chain[chain.index(current.next):]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    problems.append(loc.problem(
                        "menu.yaml", ("nodes", min(cycle), "next"),
                        "say nodes " + " -> ".join(cycle + [current.next]) + " lead to each other with no "
                        "menu between: the router would talk in a circle forever"))
                break
            chain.append(current.next)
            current = flows.nodes[current.next]
    return problems


def _trapped(flows: Flows, edges: dict[str, list[str]], seen: set[str], loc: Locator) -> list[Problem]:
    """Reachable nodes from which no path leads to a service or an end: callers can only go round."""
    exits = {nid for nid, node in flows.nodes.items()
             if isinstance(node, (ConnectNode, EndNode)) or (isinstance(node, SayNode) and node.next is None)}
    can_leave = set(exits)
    changed = True
    while changed:
        changed = False
        for nid, targets in edges.items():
            if nid not in can_leave and any(t in can_leave for t in targets):
                can_leave.add(nid)
                changed = True
    trapped = sorted(n for n in seen if n not in can_leave)
    return [loc.problem("menu.yaml", ("nodes", nid),
                        "callers who reach this node can only go round between " + ", ".join(trapped) +
                        ": no option there leads to a service or an end")
            for nid in trapped]
