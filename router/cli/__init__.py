"""`router`: the operators' tools for the flow files: validate, simulate, check, graph (and, from
router/cli/live.py, apply, rollback, versions, divert, undivert).

Why a command line: helpline staff change the menu, services and wording in YAML; before a change goes
live they need to see every mistake with its file and line (validate), hear and read what callers and
texters will get (simulate), confirm the journeys that matter still work (check) and see the whole menu
(graph). Each command is a thin layer over router.inspect.checks, router.simulator.simulate, router.simulator.scenarios and
router.inspect.graph, which the tests use directly.
"""
from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

import click

import redis

from router.inspect import graph as graph_mod
from router.inspect import checks
from router.live import diversions as live_diversions  # not `live`: the name of the submodule router.cli.live
from router.simulator import scenarios as scenarios_mod
from router.inspect.checks.services import closure_notes
from router.definition.flowfile import FlowError, load_flows, read_folder
from router.definition.hours import LONDON
from router.settings import load_settings
from router.simulator.simulate import (DEFAULT_FROM, HANGUP, DIAL_OUTCOMES, Event, ScriptInputs, SimulationError,
                             Simulator, parse_clock, parse_script)
from router.simulator.remote import RemoteSimulator, local_auth_token
from router.store.state import make_redis

FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)


def _default_folder(folder: Path | None) -> Path:
    return folder if folder is not None else load_settings().flows_dir


def _quiet_logs() -> None:
    """The app logs JSON lines for production; in a terminal only its warnings and errors matter."""
    logging.getLogger().setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Tools for the helpline's flow files (menu, services, wording). Start with `router validate`."""


# ------------------------------------------------------------------ validate
@main.command()
@click.argument("flows_dir", required=False, type=FOLDER)
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@click.option("--json", "as_json", is_flag=True, help="Print the problems as a JSON list (for CI).")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Judge the services' `checked:` dates as if today were this date (YYYY-MM-DD).")
def validate(flows_dir: Path | None, strict: bool, as_json: bool, today: datetime | None) -> None:
    """Check the flow files: every error and warning with its file and line.

    Exit 0 when the app would accept the files (warnings allowed unless --strict), 1 otherwise."""
    folder = _default_folder(flows_dir)
    problems = checks.lint_folder(folder, today.date() if today else None, base=_live_base(folder))
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
        click.echo(f"{_relative(folder)}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
                   f" ({verdict})", err=bool(problems))
    sys.exit(1 if errors or (strict and warnings) else 0)


def _show_followup_sender(folder: Path) -> None:
    """Whether texts are offered at all: they need a sender that can text (router/web/followups.py)."""
    from router.web import followups

    try:
        flows = load_flows(folder, lint=False)
    except FlowError:
        flows = None
    why = followups.why_not_offered(load_settings(), flows)
    if why:
        click.echo(f"note: {why}", err=True)


def _refusal_verdict(folder: Path) -> str:
    """Who refuses flows with errors: the app too, or only `router apply` (a closure that has passed is an
    error for a change, but the running app keeps serving flows it accepted, with a warning)."""
    try:
        checks.load_checked(folder)
    except FlowError:
        return "the app would refuse these flows"
    return "router apply would refuse these flows; the running app only warns about them"


def _live_base(folder: Path):
    """The flows live now, when `folder` is a draft of them: a problem is reported at the line changed."""
    live = load_settings().flows_dir
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
    for diversion in _diversions_in_force().values():
        click.echo(f"diversion in force now (router divert): {diversion.line()}")


def _diversions_in_force() -> dict:
    """The diversions in Redis now; none if Redis cannot be reached (the tools work without it)."""
    try:
        return live_diversions(make_redis(load_settings().redis_url, timeout=1.0))
    except (redis.RedisError, OSError, ValueError):
        return {}


@main.command()
@click.argument("phrase", required=False)
@click.option("--lang", default="cy", show_default=True, help="The language of the text reviewed.")
@click.option("--flows", "flows_dir", type=FOLDER, default=None, help="Flow folder (default: FLOWS_DIR or flows/).")
def fingerprint(phrase: str | None, lang: str, flows_dir: Path | None) -> None:
    """Print the review line for PHRASE as its text is now, for `review:` in phrases.yaml, once a fluent
    speaker has reviewed that text (a later change to it makes it unreviewed again). Without PHRASE: the
    line of every phrase not reviewed as it is now, with its text, for the reviewer to work through."""
    from router.inspect.checks.review import fingerprint as text_fingerprint, review_state

    try:
        flows = load_flows(_default_folder(flows_dir))
    except FlowError as exc:
        _print_refused(exc)
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


# ------------------------------------------------------------------ simulate
class TerminalInputs:
    """Keys, dial outcomes and texts typed by the operator. End of input means hanging up."""

    def key(self) -> str | None:
        while True:
            answer = _ask("press a key (0-9, * or #; several, e.g. 999, typed fast; Enter = say nothing; "
                          "q = hang up)")
            if answer is None or answer.lower() in ("q", "quit", HANGUP):
                return HANGUP
            if answer == "":
                return None
            if all(key in "0123456789*#" for key in answer):
                return answer  # several keys: a burst (router/simulator/callplayer.py)
            click.echo("  keys please: 0-9, * or #")

    def dial_outcome(self, number: str) -> str:
        while True:
            answer = _ask(f"how does the call end? ({'/'.join(DIAL_OUTCOMES)}; Enter = completed)")
            if answer is None or answer == "":
                return "completed"
            if answer.lower().removeprefix("dial:") in DIAL_OUTCOMES:
                return answer.lower().removeprefix("dial:")
            click.echo(f"  one of: {', '.join(DIAL_OUTCOMES)}")

    def text(self) -> str | None:
        answer = _ask("your text (Enter on an empty line to stop)")
        return answer or None


def _ask(prompt: str) -> str | None:
    try:
        suffix = ": " if sys.stdin.isatty() else "\n"
        return click.prompt(prompt, default="", show_default=False, prompt_suffix=suffix).strip()
    except (click.Abort, EOFError):
        return None


@main.command()
@click.argument("channel", type=click.Choice(["voice", "sms"]))
@click.option("--from", "sender", default=None,
              help=f"The caller's or texter's number ('anonymous' for a withheld number). Default {DEFAULT_FROM}; "
                   f"with --url {RemoteSimulator.DEFAULT_SENDER}, a number no phone has.")
@click.option("--at", "at", default=None, help='London time, e.g. "2026-12-25 03:00" (default: now).')
@click.option("--lang", default=None, help="Choose this language first, e.g. cy (press 9 / text Cymraeg).")
@click.option("--script", default=None,
              help='Run without asking: comma-separated keys ("2,1"; "999" = typed fast; "" = silence; dial:busy after a dial) '
                   'or, for sms, the texts ("hi,4").')
@click.option("--flows", "flows_dir", type=FOLDER, default=None, help="Flow folder (default: FLOWS_DIR or flows/).")
@click.option("--redis-url", default=None,
              help="Keep conversation state in this Redis (default: in memory, for this session only).")
@click.option("--url", default=None,
              help="Play against a running instance instead (e.g. http://localhost:5000): what is live there. "
                   "Signed with TWILIO_AUTH_TOKEN, or the local token of `make run` (.data/dev-auth-token).")
def simulate(channel: str, sender: str | None, at: str | None, lang: str | None, script: str | None,
             flows_dir: Path | None, redis_url: str | None, url: str | None) -> None:
    """Play a call or a text conversation through the real app, as Twilio would.

    Every request is signed as Twilio signs it and every answer is the app's own TwiML. Nothing is
    sent: follow-up texts are shown, never queued (except with --url, where the instance does its own
    work). Closures near the date and the diversions in force are shown first and played."""
    try:
        when = parse_clock(at) if at else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    if url:
        if when is not None:
            raise click.UsageError("a running instance keeps its own clock: --at cannot be used with --url")
        if not url.startswith(("http://", "https://")):
            raise click.BadParameter(f"{url!r} is not a web address: write it with http:// or https://, e.g. "
                                     "--url http://localhost:5000", param_hint="--url")
        token = local_auth_token()
        if not token:
            raise click.UsageError("no auth token: set TWILIO_AUTH_TOKEN to the instance's token "
                                   "(or run it with `make run`, which writes .data/dev-auth-token)")
        simulator = RemoteSimulator(url, token, _default_folder(flows_dir))
        sender = sender or RemoteSimulator.DEFAULT_SENDER
    else:
        sender = sender or DEFAULT_FROM
        folder = _default_folder(flows_dir)
        active = _diversions_in_force()
        try:
            simulator = Simulator(folder, redis_url=redis_url, at=when, diversions=active)
        except FlowError as exc:
            _print_refused(exc)
            sys.exit(1)
        day = simulator.now.astimezone(LONDON).date()
        for note in closure_notes(simulator.app.extensions["router"].flows.base, day - timedelta(days=7), 21):
            click.echo(click.style(f"[closure: {note}]", dim=True))
        for diversion in active.values():
            click.echo(click.style(f"[diversion in force, played here: {diversion.line()}]", dim=True))
    _quiet_logs()
    inputs = ScriptInputs(parse_script(script)) if script is not None else TerminalInputs()
    show = _printer(echo_inputs=script is not None or not sys.stdin.isatty())
    try:
        if channel == "voice":
            simulator.call(inputs, caller=sender, lang=lang, on_event=show)
        else:
            simulator.texts(inputs, sender=sender, lang=lang, on_event=show)
    except SimulationError as exc:
        click.echo(f"simulation stopped: {exc}", err=True)
        sys.exit(1)


def _printer(echo_inputs: bool):
    """Print each event as it happens; what the operator typed is not repeated back."""
    def show(event: Event) -> None:
        if event.kind in ("heard", "read"):
            click.echo(str(event))
        elif event.kind in ("pressed", "silence", "sent", "dial_outcome"):
            if echo_inputs:
                click.echo(str(event))
        else:
            click.echo(click.style(str(event), dim=True) if event.kind == "note" else str(event))
    return show


def _print_refused(exc: FlowError) -> None:
    for problem in exc.problems:
        click.echo(str(problem), err=True)
    click.echo("the app refuses these flow files: fix the errors above (router validate shows them all)",
               err=True)


# ------------------------------------------------------------------ check
@main.command()
@click.argument("flows_dir", required=False, type=FOLDER)
@click.option("--scenarios", "scenarios_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Scenarios file (default: scenarios.yaml in the flow folder).")
@click.option("-v", "--verbose", is_flag=True, help="Show the transcript of every scenario, not only failures.")
def check(flows_dir: Path | None, scenarios_file: Path | None, verbose: bool) -> None:
    """Play the operators' scenarios (scenarios.yaml) and say which pass. Exit 1 if any fails."""
    folder = _default_folder(flows_dir)
    path = scenarios_file or folder / scenarios_mod.SCENARIOS_FILE
    if not path.exists():
        click.echo(f"{path}: no scenarios file", err=True)
        sys.exit(1)
    scenarios, problems = scenarios_mod.load_scenarios(path, _relative(path))
    if problems:
        for problem in problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    try:
        simulator = Simulator(folder, assume_sender=True)  # scenarios check the flows, as deployed with a sender
    except FlowError as exc:
        _print_refused(exc)
        sys.exit(1)
    _quiet_logs()
    results = scenarios_mod.run_all(simulator, scenarios)
    for result in results:
        click.echo(f"{'PASS' if result.passed else 'FAIL'}  {result.scenario.name}")
        for failure in result.failures:
            click.echo(f"      - {failure}")
        if result.transcript and (verbose or not result.passed):
            for line in result.transcript.text().splitlines():
                click.echo(f"        {line}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results)} scenarios: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ------------------------------------------------------------------ graph
@main.command()
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
        flows = load_flows(_default_folder(flows_dir))
    except FlowError as exc:
        _print_refused(exc)
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


from router.cli.live import COMMANDS  # noqa: E402 - apply, rollback, versions, divert, undivert

from router.cli.divert import COMMANDS as DIVERT_COMMANDS  # noqa: E402 - divert, undivert
from router.cli.status import COMMANDS as STATUS_COMMANDS  # noqa: E402 - status, publish

for _command in COMMANDS + DIVERT_COMMANDS + STATUS_COMMANDS:
    main.add_command(_command)

from router.cli.twilio_account import twilio  # noqa: E402 - twilio check, twilio configure

main.add_command(twilio)


