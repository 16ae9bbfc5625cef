"""`router validate` and `router fingerprint`: is a change to the flow files correct, before anyone
hears it?

Why: helpline staff change the menu, services and wording in YAML; before a change goes live they need
every mistake with its file and line. `validate` runs the schema and router.inspect.validation (the
same checks the app and `router apply` run) and says whether the app would accept the folder;
`fingerprint` prints the line a reviewer writes in phrases.yaml once a fluent speaker has read a text.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import click

from router.cli.common import FOLDER, default_folder, diversions_in_force, print_refused, relative
from router.definition.flowfile import FlowError, load_flows, read_folder
from router.definition.hours import LONDON
from router.inspect import validation
from router.inspect.validation.review import fingerprint as text_fingerprint, review_state
from router.inspect.validation.services import closure_notes
from router.cli.common import cli_settings


@click.command()
@click.argument("flows_dir", required=False, type=FOLDER)
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@click.option("--json", "as_json", is_flag=True, help="Print the problems as a JSON list (for CI).")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Judge the services' `checked:` dates as if today were this date (YYYY-MM-DD).")
def validate(flows_dir: Path | None, strict: bool, as_json: bool, today: datetime | None) -> None:
    """Check the flow files: every error and warning with its file and line.

    Exit 0 when the app would accept the files (warnings allowed unless --strict), 1 otherwise."""
    folder = default_folder(flows_dir)
    problems = validation.lint_folder(folder, today.date() if today else None, base=_live_base(folder))
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    if as_json:
        click.echo(json.dumps([asdict(p) for p in problems], indent=2, ensure_ascii=False))
    else:
        for problem in problems:
            click.echo(str(problem))
        _show_closures_and_diversions(folder)
        _show_followup_sender(folder)
        verdict = _refusal_verdict(folder) if errors else \
            f"the app would accept these flows; /healthz will show flows_version {read_folder(folder)[2]}"
        click.echo(f"{relative(folder)}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
                   f" ({verdict})", err=bool(problems))
    sys.exit(1 if errors or (strict and warnings) else 0)


def _show_followup_sender(folder: Path) -> None:
    """Whether texts are offered at all: they need a sender that can text (router/web/followups.py)."""
    from router.web import followups

    try:
        flows = load_flows(folder, lint=False)
    except FlowError:
        flows = None
    why = followups.why_not_offered(cli_settings(), flows)
    if why:
        click.echo(f"note: {why}", err=True)


def _refusal_verdict(folder: Path) -> str:
    """Who refuses flows with errors: the app too, or only `router apply` (a closure that has passed is an
    error for a change, but the running app keeps serving flows it accepted, with a warning)."""
    try:
        validation.load_checked(folder)
    except FlowError:
        return "the app would refuse these flows"
    return "router apply would refuse these flows; the running app only warns about them"


def _live_base(folder: Path):
    """The flows live now, when `folder` is a draft of them: a problem is reported at the line changed."""
    live = cli_settings().flows_dir
    if Path(folder).resolve() == Path(live).resolve():
        return None
    try:
        return load_flows(live)
    except FlowError:
        return None


def _show_closures_and_diversions(folder: Path) -> None:
    try:
        flows = load_flows(folder)
    except FlowError:
        return
    today = datetime.now(LONDON).date()
    for note in closure_notes(flows, today, 60):
        click.echo(f"closure: {note}")
    for diversion in diversions_in_force().values():
        click.echo(f"diversion in force now (router divert): {diversion.line()}")


@click.command()
@click.argument("phrase", required=False)
@click.option("--lang", default="cy", show_default=True, help="The language of the text reviewed.")
@click.option("--flows", "flows_dir", type=FOLDER, default=None, help="Flow folder (default: FLOWS_DIR or flows/).")
def fingerprint(phrase: str | None, lang: str, flows_dir: Path | None) -> None:
    """Print the review line for PHRASE as its text is now, for `review:` in phrases.yaml, once a fluent
    speaker has reviewed that text (a later change to it makes it unreviewed again). Without PHRASE: the
    line of every phrase not reviewed as it is now, with its text, for the reviewer to work through."""
    try:
        flows = load_flows(default_folder(flows_dir))
    except FlowError as exc:
        print_refused(exc)
        sys.exit(1)
    today = f"{datetime.now(LONDON):%Y-%m-%d}"
    if phrase is None:
        statuses = flows.phrase_review.get(lang, {})
        for pid, texts in sorted(flows.phrases.items()):
            if lang in texts and review_state(statuses.get(pid, ""), texts[lang]) != "reviewed":
                click.echo(f"    # {texts[lang]}")
                click.echo(f"    {pid}: reviewed {today} by <name>, fingerprint {text_fingerprint(texts[lang])}")
        return
    text = flows.phrases.get(phrase, {}).get(lang)
    if text is None:
        raise click.BadParameter(f"phrases.yaml has no {lang} text for {phrase!r}", param_hint="PHRASE")
    click.echo(f"    {phrase}: reviewed {today} by <name>, fingerprint {text_fingerprint(text)}")


COMMANDS = (validate, fingerprint)
