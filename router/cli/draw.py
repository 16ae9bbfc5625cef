"""`router graph`: draw the menu tree (keys, services with number and hours, fallbacks dashed) as
Mermaid, Graphviz dot or SVG, from router.inspect.graph.

Why: an operator reviewing a change, or a newcomer, sees the whole menu at once; docs/flow.mmd and
docs/flow.svg are drawn with it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from router.cli.common import FOLDER, default_folder, print_refused
from router.definition.flowfile import FlowError, load_flows
from router.inspect import graph as graph_mod


@click.command()
@click.argument("flows_dir", required=False, type=FOLDER)
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid", show_default=True)
@click.option("--lang", default=None, help="Language of the labels (default: the default language).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of the screen.")
@click.option("--renderer", type=click.Choice(["auto", "graphviz", "builtin"]), default="auto", show_default=True,
              help="For svg: Graphviz's dot (auto: when installed) or the built-in layout.")
def graph(flows_dir: Path | None, fmt: str, lang: str | None, out: Path | None, renderer: str) -> None:
    """Draw the menu tree: keys, services with number and hours, fallbacks dashed."""
    try:
        flows = load_flows(default_folder(flows_dir))
    except FlowError as exc:
        print_refused(exc)
        sys.exit(1)
    if lang and lang not in flows.config.languages:
        raise click.BadParameter(f"{lang!r} is not one of {', '.join(flows.config.languages)}", param_hint="--lang")
    if renderer == "graphviz" and not graph_mod.graphviz_available():
        raise click.UsageError("Graphviz's `dot` is not installed (Debian: apt-get install graphviz)")
    text = graph_mod.render(flows, fmt, lang, renderer)
    if out:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)


COMMANDS = (graph,)
