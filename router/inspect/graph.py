"""The menu tree as a picture (Mermaid, Graphviz dot or SVG), drawn from the flow files themselves.

Why: an operator should see the whole caller journey before and after a change (which key leads where,
which service answers with which number and hours, who takes over when a service is closed) without
reading YAML. The diagram is built from the same Flows the app serves, so it cannot drift from them.
SVG uses Graphviz when `dot` is installed and a small built-in layered layout otherwise.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from router import engine
from router.definition.hours import LONDON
from router.definition.model import ConnectNode, EndNode, Flows, MenuNode, SayNode

FALLBACK_LABEL = "if closed or no answer"


@dataclass
class Box:
    id: str
    kind: str            # menu | service | say | end | language
    lines: list[str]


@dataclass
class Edge:
    source: str
    target: str
    label: str
    dashed: bool = False


@dataclass
class Graph:
    boxes: dict[str, Box] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    start: str = ""


# ------------------------------------------------------------------ the graph
def build(flows: Flows, lang: str | None = None) -> Graph:
    """Boxes for menus, services (one per service however many nodes connect to it), say/end nodes and
    language switches; solid edges for keys, dashed edges for fallbacks."""
    lang = lang or flows.config.default_language
    ctx = engine.Context(flows, engine.SMS, lang, datetime.now(LONDON))
    graph = Graph(start=_box_id(flows, flows.start))
    for node_id, node in flows.nodes.items():
        if isinstance(node, MenuNode):
            title = "start: safety advice, then" if node_id == flows.start else ""
            prompt = flows.text(node.prompt, lang)
            graph.boxes[_box_id(flows, node_id)] = Box(
                _box_id(flows, node_id), "menu", [line for line in (title, f"menu {node_id}", prompt) if line])
        elif isinstance(node, ConnectNode) and node.service in flows.services:
            _service_box(graph, flows, ctx, node.service)
            for other_lang, sid in (node.by_language or {}).items():  # e.g. Welsh callers: Live Fear Free
                if sid in flows.services and sid != node.service:
                    _service_box(graph, flows, ctx, sid)
                    word = flows.phrase("sms_language_option", other_lang, key="").strip()
                    graph.edges.append(Edge(f"svc_{node.service}", f"svc_{sid}", f"{word} callers instead",
                                            dashed=True))
        elif isinstance(node, SayNode):
            graph.boxes[_box_id(flows, node_id)] = Box(_box_id(flows, node_id), "say",
                                                       [f"say: {flows.text(node.say, lang)}"])
        elif isinstance(node, EndNode):
            words = flows.text(node.say, lang)
            graph.boxes[_box_id(flows, node_id)] = Box(_box_id(flows, node_id), "end",
                                                       ["end of the call"] + ([words] if words else []))
    for node_id, node in flows.nodes.items():
        source = _box_id(flows, node_id)
        if isinstance(node, MenuNode):
            for option in node.options:
                if option.language:
                    target_lang = option.language.get(lang)
                    if target_lang not in flows.config.languages:
                        continue
                    word = flows.phrase("sms_language_option", target_lang, key=option.key).split(" ", 1)[-1]
                    box = f"lang_{target_lang}"
                    graph.boxes[box] = Box(box, "language", [f"{word}: the menu again from the start"])
                    graph.edges.append(Edge(source, box, f"{option.key}: {word}"))
                elif option.next in flows.nodes:
                    graph.edges.append(Edge(source, _box_id(flows, option.next),
                                            f"{option.key}: {flows.text(option.label, lang)}"))
        elif isinstance(node, SayNode) and node.next in flows.nodes:
            graph.edges.append(Edge(source, _box_id(flows, node.next), "then"))
    for sid in [b.id.removeprefix("svc_") for b in list(graph.boxes.values()) if b.kind == "service"]:
        _fallbacks(graph, flows, ctx, sid)
    return graph


def _box_id(flows: Flows, node_id: str) -> str:
    node = flows.nodes.get(node_id)
    if isinstance(node, ConnectNode):
        return f"svc_{node.service}"
    return f"node_{node_id}"


def _service_box(graph: Graph, flows: Flows, ctx: engine.Context, sid: str) -> str:
    box = f"svc_{sid}"
    if box not in graph.boxes:
        service = flows.services[sid]
        graph.boxes[box] = Box(box, "service", [flows.text(service.name, ctx.lang), service.number,
                                                engine.describe_hours(ctx, service)])
    return box


def _fallbacks(graph: Graph, flows: Flows, ctx: engine.Context, sid: str) -> None:
    seen = {sid}
    while (target := flows.services[sid].fallback) is not None and target in flows.services and target not in seen:
        new = f"svc_{target}" not in graph.boxes
        _service_box(graph, flows, ctx, target)
        label = "if no answer" if flows.services[sid].open_24_hours else FALLBACK_LABEL
        graph.edges.append(Edge(f"svc_{sid}", f"svc_{target}", label, dashed=True))
        if not new:
            return
        seen.add(target)
        sid = target


# ------------------------------------------------------------------ Mermaid
_MERMAID_SHAPES = {"menu": ('{{"', '"}}'), "service": ('["', '"]'), "say": ('["', '"]'),
                   "end": ('(["', '"])'), "language": ('(["', '"])')}
_COLOURS = {"menu": "#dde8f8", "service": "#e3f2e6", "say": "#fff4d6", "end": "#f3e0e0", "language": "#eeeeee"}


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(graph: Graph) -> str:
    out = ["flowchart LR"]
    for box in graph.boxes.values():
        left, right = _MERMAID_SHAPES[box.kind]
        out.append(f"  {box.id}{left}{'<br/>'.join(_mermaid_text(line) for line in box.lines)}{right}")
    for edge in graph.edges:
        arrow = "-.->" if edge.dashed else "-->"
        out.append(f'  {edge.source} {arrow}|"{_mermaid_text(edge.label)}"| {edge.target}')
    for kind, colour in _COLOURS.items():
        ids = [b.id for b in graph.boxes.values() if b.kind == kind]
        if ids:
            out.append(f"  classDef {kind} fill:{colour},stroke:#555")
            out.append(f"  class {','.join(ids)} {kind}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ Graphviz dot
def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(graph: Graph) -> str:
    out = ["digraph flows {", "  rankdir=LR;", '  graph [fontname="Helvetica", nodesep=0.25, ranksep=1.2];',
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
           '  edge [fontname="Helvetica", fontsize=10];']
    shapes = {"menu": "box", "service": "box", "say": "note", "end": "box", "language": "box"}
    for box in graph.boxes.values():
        label = "\\n".join(_dot_text(line) for line in box.lines)
        out.append(f'  {box.id} [label="{label}", shape={shapes[box.kind]}, fillcolor="{_COLOURS[box.kind]}"];')
    for edge in graph.edges:
        extra = ', style=dashed, color="#777777", fontcolor="#555555", constraint=false' if edge.dashed else ""
        out.append(f'  {edge.source} -> {edge.target} [label="{_dot_text(edge.label)}"{extra}];')
    out.append("}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ SVG
def graphviz_available() -> bool:
    return shutil.which("dot") is not None


def to_svg(graph: Graph, renderer: str = "auto") -> str:
    """SVG via Graphviz (`renderer` "graphviz", or "auto" when dot is installed), else the built-in layout."""
    if renderer == "graphviz" or (renderer == "auto" and graphviz_available()):
        result = subprocess.run(["dot", "-Tsvg"], input=to_dot(graph), capture_output=True, text=True,
                                check=True, timeout=60)
        return result.stdout
    return BuiltinLayout(graph).svg()


class BuiltinLayout:
    """A layered left-to-right tree: one column per step from the start, boxes stacked in each column,
    key labels just before the box they lead to, fallbacks as dashed curves on the right of the boxes."""

    CHAR, LINE, PAD, GAP_Y, MARGIN = 6.6, 16, 8, 18, 20

    def __init__(self, graph: Graph):
        self.graph = graph
        self.columns = self._columns()
        column_of = {b: i for i, column in enumerate(self.columns) for b in column}
        # An edge back to an earlier column (e.g. "8: the main menu") is written inside its box instead
        # of drawn across the whole picture.
        self.back = [e for e in graph.edges if not e.dashed and column_of[e.target] <= column_of[e.source]]
        self.notes = {b: [f"{e.label} (back to {self._name(e.target)})" for e in self.back if e.source == b]
                      for b in graph.boxes}
        self.pos: dict[str, tuple[float, float, float, float]] = {}  # x, y, width, height
        self._place()

    def _columns(self) -> list[list[str]]:
        depth = {self.graph.start: 0} if self.graph.start in self.graph.boxes else {}
        order = list(depth)
        for box_id in order:
            for edge in self.graph.edges:
                if edge.source == box_id and not edge.dashed and edge.target not in depth:
                    depth[edge.target] = depth[box_id] + 1
                    order.append(edge.target)
        last = max(depth.values(), default=-1)
        for box_id in self.graph.boxes:  # unreachable boxes, and services reached only as fallbacks
            if box_id not in depth:
                depth[box_id] = last + 1
                order.append(box_id)
        columns: list[list[str]] = [[] for _ in range(max(depth.values(), default=0) + 1)]
        for box_id in order:
            columns[depth[box_id]].append(box_id)
        return [c for c in columns if c]

    def _name(self, box_id: str) -> str:
        box = self.graph.boxes[box_id]
        return box.lines[1] if box.kind == "menu" and box.lines[0].startswith("start") else box.lines[0]

    def _lines(self, box_id: str) -> list[str]:
        return self.graph.boxes[box_id].lines + self.notes.get(box_id, [])

    def _size(self, box: Box) -> tuple[float, float]:
        lines = self._lines(box.id)
        width = max(len(line) for line in lines) * self.CHAR + 2 * self.PAD
        return width, len(lines) * self.LINE + 2 * self.PAD - 2

    def _place(self) -> None:
        x: float = self.MARGIN
        labels = {e.target: len(e.label) for e in self.graph.edges if not e.dashed and e not in self.back}
        for column in self.columns:
            gap = max((labels.get(b, 0) for b in column), default=0) * self.CHAR * 0.9 + 40
            x += gap if x > self.MARGIN else 0
            y: float = self.MARGIN
            width = max(self._size(self.graph.boxes[b])[0] for b in column)
            for box_id in column:
                w, h = self._size(self.graph.boxes[box_id])
                self.pos[box_id] = (x, y, w, h)
                y += h + self.GAP_Y
            x += width + 60  # room for the dashed fallback curves

    def svg(self) -> str:
        width = max(x + w for x, _, w, _ in self.pos.values()) + 120
        height = max(y + h for _, y, _, h in self.pos.values()) + self.MARGIN
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
               f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
               '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
               'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#444"/></marker></defs>']
        for edge in self.graph.edges:
            if edge not in self.back:
                out.append(self._edge(edge))
        for box_id, (x, y, w, h) in self.pos.items():
            box = self.graph.boxes[box_id]
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="6" '
                       f'fill="{_COLOURS[box.kind]}" stroke="#555"/>')
            for i, line in enumerate(self._lines(box_id)):
                weight = ' font-weight="bold"' if i == 0 and box.kind in ("service", "menu") else ""
                weight += ' font-style="italic"' if i >= len(box.lines) else ""
                out.append(f'<text x="{x + self.PAD:.1f}" y="{y + self.PAD + 11 + i * self.LINE:.1f}"{weight}>'
                           f'{escape(line)}</text>')
        out.append("</svg>")
        return "\n".join(out) + "\n"

    def _edge(self, edge: Edge) -> str:
        sx, sy, sw, sh = self.pos[edge.source]
        tx, ty, tw, th = self.pos[edge.target]
        if edge.dashed:
            if sx > tx + tw:  # from a later column: leave by the left side, through the gap between columns
                x1, y1, x2, y2 = sx, sy + sh / 2, tx + tw, ty + th / 2
                c1, c2 = x1 - 40, x2 + 40
            else:
                x1, y1, x2, y2 = sx + sw, sy + sh / 2, tx + tw, ty + th / 2
                c1 = c2 = max(x1, x2) + 40
            return (f'<path d="M {x1:.1f} {y1:.1f} C {c1:.1f} {y1:.1f}, {c2:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}" '
                    f'fill="none" stroke="#888" stroke-dasharray="5 4" marker-end="url(#arrow)">'
                    f'<title>{escape(edge.label)}</title></path>')
        x1, y1, x2, y2 = sx + sw, sy + sh / 2, tx, ty + th / 2
        mid = (x1 + x2) / 2
        return (f'<path d="M {x1:.1f} {y1:.1f} C {mid:.1f} {y1:.1f}, {mid:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}" '
                f'fill="none" stroke="#444" marker-end="url(#arrow)"/>'
                f'<text x="{x2 - 6:.1f}" y="{y2 - 5:.1f}" text-anchor="end" font-size="11" fill="#222">'
                f'{escape(edge.label)}</text>')


def render(flows: Flows, fmt: str = "mermaid", lang: str | None = None, renderer: str = "auto") -> str:
    graph = build(flows, lang)
    if fmt == "mermaid":
        return to_mermaid(graph)
    if fmt == "dot":
        return to_dot(graph)
    if fmt == "svg":
        return to_svg(graph, renderer)
    raise ValueError(f"unknown format {fmt!r}: use mermaid, dot or svg")
