"""`router simulate` and `router scenarios`: play calls and texts through the real app, as Twilio would.

Why together: both drive router.simulator (the one driver the tests use too), signed as Twilio signs,
answered with the app's own TwiML. `simulate` lets an operator hear and read one conversation (typed or
scripted, or against a running instance with --url); `scenarios` plays every journey in
flows/scenarios.yaml and says PASS or FAIL. `router check` is the old name of `scenarios`, kept as a
hidden alias so runbooks and habits keep working (same options, same output).
"""
from __future__ import annotations

import copy
import sys
from datetime import timedelta
from pathlib import Path

import click

from router.cli.common import (FOLDER, cli_settings, default_folder, diversions_in_force, print_refused, quiet_logs,
                               relative)
from router.definition.flowfile import FlowError
from router.definition.hours import LONDON
from router.inspect.validation.services import closure_notes
from router.simulator import scenarios as scenarios_mod
from router.dev.local import local_auth_token
from router.simulator.remote import RemoteSimulator
from router.simulator.simulate import (DEFAULT_FROM, DIAL_OUTCOMES, HANGUP, Event, ScriptInputs, SimulationError,
                                       Simulator, parse_clock, parse_script)


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


@click.command()
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
    simulator: Simulator | RemoteSimulator
    if url:
        if when is not None:
            raise click.UsageError("a running instance keeps its own clock: --at cannot be used with --url")
        if not url.startswith(("http://", "https://")):
            raise click.BadParameter(f"{url!r} is not a web address: write it with http:// or https://, e.g. "
                                     "--url http://localhost:5000", param_hint="--url")
        token = local_auth_token(cli_settings())
        if not token:
            raise click.UsageError("no auth token: set TWILIO_AUTH_TOKEN to the instance's token "
                                   "(or run it with `make run`, which writes .data/dev-auth-token)")
        simulator = RemoteSimulator(url, token, default_folder(flows_dir))
        sender = sender or RemoteSimulator.DEFAULT_SENDER
    else:
        sender = sender or DEFAULT_FROM
        folder = default_folder(flows_dir)
        active = diversions_in_force()
        try:
            simulator = Simulator(folder, redis_url=redis_url, at=when, diversions=active)
        except FlowError as exc:
            print_refused(exc)
            sys.exit(1)
        day = simulator.now.astimezone(LONDON).date()
        for note in closure_notes(simulator.app.extensions["router"].flows.base, day - timedelta(days=7), 21):
            click.echo(click.style(f"[closure: {note}]", dim=True))
        for diversion in active.values():
            click.echo(click.style(f"[diversion in force, played here: {diversion.line()}]", dim=True))
    quiet_logs()
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


@click.command()
@click.argument("flows_dir", required=False, type=FOLDER)
@click.option("--scenarios", "scenarios_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Scenarios file (default: scenarios.yaml in the flow folder).")
@click.option("-v", "--verbose", is_flag=True, help="Show the transcript of every scenario, not only failures.")
def scenarios(flows_dir: Path | None, scenarios_file: Path | None, verbose: bool) -> None:
    """Play the operators' scenarios (scenarios.yaml) and say which pass. Exit 1 if any fails."""
    folder = default_folder(flows_dir)
    path = scenarios_file or folder / scenarios_mod.SCENARIOS_FILE
    if not path.exists():
        click.echo(f"{path}: no scenarios file", err=True)
        sys.exit(1)
    played, problems = scenarios_mod.load_scenarios(path, relative(path))
    if problems:
        for problem in problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    try:
        simulator = Simulator(folder, assume_sender=True)  # scenarios check the flows, as deployed with a sender
    except FlowError as exc:
        print_refused(exc)
        sys.exit(1)
    quiet_logs()
    results = scenarios_mod.run_all(simulator, played)
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


# The old name: hidden from --help, otherwise the same command (its usage line says `router check`).
check = copy.copy(scenarios)
check.name = "check"
check.hidden = True

COMMANDS = (simulate, scenarios, check)
