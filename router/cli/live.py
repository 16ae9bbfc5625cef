"""`router draft | apply | rollback | versions`: changing what is live, safely, at 2am.

Why apart from validate.py and play.py: these commands change what callers get. Each one says what
will change before it does it, refuses rather than guesses, and leaves a record (the numbered history).
The work itself is router.live's, which the web process shares.
"""
from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click
import redis

from router.inspect import journeys, validation
from router import live
from router.live import drafts
from router.simulator import scenarios as scenarios_mod
from router.definition.flowfile import FlowError, load_flows
from router.definition.model import Flows
from router.cli.common import cli_settings
from router.settings import Settings
from router.simulator.simulate import Simulator
from router.store.connection import make_redis, redacted_url

SHOW_CHANGES = 15


def _who(who: str | None) -> str:
    return who or cli_settings().operator or getpass.getuser()


def _client(settings: Settings) -> redis.Redis | None:
    client = make_redis(settings.redis_url, timeout=2.0)
    try:
        client.ping()
        return client
    except (redis.RedisError, OSError):
        click.echo(f"note: Redis at {redacted_url(settings.redis_url)} cannot be reached: other instances will not "
                   "follow this change, and diversions cannot be read", err=True)
        return None


def _live_flows(settings: Settings, history: live.History) -> Flows | None:
    """What callers get now: the live folder (or a release followed since it changed), else the newest
    release (as the web process decides)."""
    try:
        return validation.load_checked(live.served_folder(settings.flows_dir, history))
    except FlowError:
        latest = history.latest()
        if latest is None:
            return None
        try:
            return validation.load_checked(history.folder(latest.number))
        except FlowError:
            return None


def _show_changes(old: Flows | None, new: Flows, show_all: bool = False) -> int:
    """What callers will get differently: changes to the first menu, to silence and to the 24-hour lines
    first and all of them; then the others, the first SHOW_CHANGES unless --all."""
    changes = journeys.diff(old, new)
    if old is None:
        click.echo("Nothing valid is live now: every journey below is new.")
    if not changes:
        click.echo("Callers and texters will hear and read exactly what they do now (every key path, both "
                   "languages, calls and texts, over the coming week, closures and the next bank holidays).")
        return 0
    first = [c for c in changes if c.first]
    rest = [c for c in changes if not c.first]
    click.echo(f"What callers and texters will get differently ({len(changes)} "
               f"change{'s' * (len(changes) != 1)}):")
    if first:
        click.echo(f"  The first menu, silent callers and the 24-hour lines ({len(first)}, all shown):")
    for change in first + (rest if show_all else rest[:SHOW_CHANGES]):
        click.echo("  " + str(change).replace("\n", "\n  "))
    if len(rest) > SHOW_CHANGES and not show_all:
        click.echo(f"  ... and {len(rest) - SHOW_CHANGES} more: add --all to list them all "
                   "(router simulate plays any of them)")
    return len(changes)


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        click.echo("not confirmed: run it in a terminal, or add --yes once you have read the changes", err=True)
        sys.exit(1)
    if not click.confirm(question, default=False):
        click.echo("nothing changed")
        sys.exit(1)


def _current(settings: Settings, history: live.History, client: redis.Redis | None) -> live.Release | None:
    try:
        return live.current_release(client, history)
    except redis.RedisError:
        return history.latest()


def _go_live(files: dict[str, bytes], flows: Flows, settings: Settings, history: live.History,
             who: str, note: str, action: str, client: redis.Redis | None,
             seen: live.Release | None) -> None:
    """Put `files` live if the applied release is still `seen` (what the operator was shown changes against)."""
    try:
        live_version = validation.load_checked(live.served_folder(settings.flows_dir, history)).version
    except FlowError:
        live_version = None
    try:
        release, warning = live.put_live(files, flows, live=settings.flows_dir, history=history, client=client,
                                              who=who, note=note, action=action, live_version=live_version,
                                              expected=seen.number if seen else None)
    except live.NotInstalled as exc:
        click.echo(f"NOT DONE: release {exc.release.number} is recorded as applied, but this machine's history or "
                   f"live folder {settings.flows_dir} could not be written ({exc}). Make them writable by the user "
                   "the app runs as; the web workers then install it by themselves within seconds. "
                   "`router status` shows whether they have.", err=True)
        sys.exit(3)
    except live.StaleBase as exc:
        now = exc.current
        click.echo(f"refused: release {now.number if now else '?'} was applied"
                   + (f" by {now.who}" if now else "") + " while this change was being checked, so the changes "
                   "shown above are no longer what callers would get; nothing changed. Make a fresh draft "
                   "(router draft NEWDIR), make your change there, and apply that", err=True)
        sys.exit(1)
    click.echo(f"release {release.number} is live (flows_version {release.version}). Every web worker serves "
               "it within a few seconds: /healthz shows flows_version and matches_applied.")
    _note_git_checkout(settings.flows_dir, release)
    if client is None and warning is None:
        warning = live.unpublished_warning("see the note above")
    if warning:
        click.echo(f"NOT DONE: {warning}", err=True)
        sys.exit(3)


def _note_git_checkout(folder: Path, release: live.Release) -> None:
    """The live folder inside a git checkout (flows/ of the repository, as `make run` uses it) now differs
    from what git has: say how to record it, or the next `git pull`/deploy puts the old flows back."""
    import subprocess

    try:
        changed = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--", "."], capture_output=True,
                                 text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return
    if changed.returncode != 0 or not changed.stdout.strip():
        return
    click.echo(f"note: {folder} is inside a git checkout, and git now sees its files changed. Record the release "
               f"there, or the next `git pull` or deploy of the checkout puts the old flows back: "
               f"git -C {folder} add . && git -C {folder} commit -m 'flows: release {release.number}'", err=True)


@click.command()
@click.argument("draft", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--note", default="", help="Why: kept in the history (router versions).")
@click.option("--who", default=None, help="Who applies it (default: $ROUTER_OPERATOR or your login).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation after showing the changes.")
@click.option("--dry-run", is_flag=True, help="Check and show the changes only; change nothing.")
@click.option("--all", "show_all", is_flag=True, help="List every change (default: the first ones in full).")
def apply(draft: Path, note: str, who: str | None, yes: bool, dry_run: bool, show_all: bool) -> None:
    """Put the flows of DRAFT live: validate, run its scenarios, show what changes, switch in one step.

    Edit a draft made by `router draft DIR`, never the live folder. Refused, with nothing changed, when the
    draft has errors, a scenario fails, another release was applied since the draft was made (it would
    undo that: the refusal shows what), or another apply wins meanwhile. Exit 3: live here, NOT DONE
    everywhere (it says the one command that finishes it)."""
    settings = cli_settings()
    history = live.History(settings.history_dir())
    old = _live_flows(settings, history)
    problems = validation.lint_folder(draft, base=old)
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        click.echo(str(problem), err=bool(errors))
    if errors:
        click.echo(f"refused: {len(errors)} error{'s' * (len(errors) != 1)} in {draft} (nothing changed)", err=True)
        sys.exit(1)
    flows = validation.load_checked(draft)
    scenarios_file = draft / scenarios_mod.SCENARIOS_FILE
    if scenarios_file.exists():
        scenarios, scenario_problems = scenarios_mod.load_scenarios(scenarios_file)
        failed = [str(p) for p in scenario_problems]
        if not scenario_problems:
            results = scenarios_mod.run_all(Simulator(draft, assume_sender=True), scenarios)
            failed = [f"{r.scenario.name}: {'; '.join(r.failures)}" for r in results if not r.passed]
            click.echo(f"{len(results)} scenarios: {len(results) - len(failed)} passed")
        if failed:
            for failure in failed:
                click.echo(f"FAIL  {failure}", err=True)
            click.echo("refused: fix the flows or the scenarios (router scenarios -v shows each journey); "
                       "nothing changed", err=True)
            sys.exit(1)
    else:
        click.echo(f"note: {draft} has no {scenarios_mod.SCENARIOS_FILE}: no scenarios were played", err=True)
    client = _client(settings)
    current = _current(settings, history, client)
    latest = history.latest()
    if old is not None and old.version == flows.version and latest is not None and latest.version == flows.version:
        _show_changes(old, flows, show_all)
        click.echo(f"release {latest.number} already has these flows: nothing to apply")
        return
    if _refuse_stale_draft(draft, flows, old, current, history):
        sys.exit(1)
    _show_changes(old, flows, show_all)
    if dry_run:
        click.echo("dry run: nothing changed (run it again without --dry-run to put these flows live)")
        return
    _confirm(yes, "Put these flows live now?")
    _go_live(live.read_files(draft), flows, settings, history, _who(who), note, "apply", client, current)


def _refuse_stale_draft(draft: Path, flows: Flows, live_flows: Flows | None, current: live.Release | None,
                        history: live.History) -> bool:
    """True (after saying why and what it would undo) when the draft was made from a release that is no
    longer the applied one. A folder not made by `router draft` is only warned about."""
    base = drafts.read_base(draft)
    if base is None:
        click.echo(f"note: {draft} was not made with `router draft`, so it cannot be checked against changes "
                   "applied since it was copied: make drafts with `router draft DIR`", err=True)
        return False
    if not drafts.is_stale(base, current):
        return False
    made = f"release {base.release}" if base.release else "the flows before any release"
    click.echo(f"refused: this draft was made from {made}, but release {current.number if current else '?'} "
               f"({current.action if current else ''} by {current.who if current else '?'}"
               + (f', "{current.note}"' if current and current.note else "") + ") has been applied since. "
               "Putting it live would undo the changes made since; nothing changed.", err=True)
    base_flows, folder = None, drafts.base_folder(base, history)
    if folder is not None:
        try:
            base_flows = validation.load_checked(folder)
        except FlowError:
            base_flows = None
    lost = drafts.undone(base_flows, live_flows, flows)
    if lost:
        click.echo(f"It would undo ({len(lost)} change{'s' * (len(lost) != 1)} callers and texters have now):", err=True)
        for change in lost[:SHOW_CHANGES]:
            click.echo("  " + str(change).replace("\n", "\n  "), err=True)
        if len(lost) > SHOW_CHANGES:
            click.echo(f"  ... and {len(lost) - SHOW_CHANGES} more", err=True)
    click.echo("Make a fresh draft (router draft NEWDIR), make your change again there, and apply that: one "
               "change at a time, always from a fresh draft.", err=True)
    return True


@click.command()
@click.argument("version", required=False, type=int)
@click.option("--note", default="", help="Why: kept in the history.")
@click.option("--who", default=None, help="Who rolls back (default: $ROUTER_OPERATOR or your login).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation after showing the changes.")
@click.option("--all", "show_all", is_flag=True, help="List every change (default: the first ones in full).")
def rollback(version: int | None, note: str, who: str | None, yes: bool, show_all: bool) -> None:
    """Put an earlier release live again (default: the one before the live one). See `router versions`."""
    settings = cli_settings()
    history = live.History(settings.history_dir())
    releases = history.releases()
    if not releases:
        click.echo("there is no history yet: nothing to roll back to", err=True)
        sys.exit(1)
    latest = releases[-1]
    if version is None:
        earlier = [r for r in releases if r.version != latest.version]
        if not earlier:
            click.echo("no earlier release holds different flows", err=True)
            sys.exit(1)
        target = earlier[-1]
    else:
        found = history.get(version)
        if found is None:
            click.echo(f"there is no release {version} (router versions lists them)", err=True)
            sys.exit(1)
        target = found
    folder = history.folder(target.number)
    try:
        flows = validation.load_checked(folder)
    except FlowError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"refused: release {target.number} no longer passes the checks (nothing changed)", err=True)
        sys.exit(1)
    click.echo(f"rolling back to release {target.number} (flows_version {target.version}, {target.action} by "
               f"{target.who})")
    client = _client(settings)
    current = _current(settings, history, client)
    _show_changes(_live_flows(settings, history), flows, show_all)
    _confirm(yes, f"Put release {target.number} live again?")
    _go_live(live.read_files(folder), flows, settings, history, _who(who), note,
             f"rollback to {target.number}", client, current)


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def draft(folder: Path) -> None:
    """Make FOLDER a new draft: a copy of the flows as applied now, which remembers that release.

    Edit the copy, then `router apply FOLDER`. If someone applies another change first, apply refuses
    this draft (it would undo theirs) and shows what it would undo: make a fresh draft and start again."""
    settings = cli_settings()
    history = live.History(settings.history_dir())
    client = _client(settings)
    current = _current(settings, history, client)
    files = None
    if current is not None and history.get(current.number) is not None:
        files = live.read_files(history.folder(current.number))
    elif current is not None and client is not None:
        try:
            files = live.release_files(client, current.number)
        except live.Refused as exc:
            click.echo(f"refused: {exc}: this machine cannot copy release {current.number}", err=True)
            sys.exit(1)
    version = None
    if files is None:  # nothing applied yet: the live folder as it is
        current, files = None, live.read_files(settings.flows_dir)
        try:
            version = validation.load_checked(settings.flows_dir).version
        except FlowError:
            version = None
    if not files:
        click.echo(f"refused: there are no flow files in {settings.flows_dir} or the history to copy", err=True)
        sys.exit(1)
    try:
        drafts.make(folder, files, current, version)
    except FileExistsError as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(1)
    made = f"release {current.number} (flows_version {current.version})" if current else \
        f"the live folder {settings.flows_dir} (no release applied yet)"
    click.echo(f"draft {folder} made from {made}. Edit it, check it with `router validate {folder}`, then "
               f"`router apply {folder}`.")


@click.command()
def versions() -> None:
    """The numbered history: what was live when, who applied it, and why."""
    settings = cli_settings()
    history = live.History(settings.history_dir())
    releases = history.releases()
    if not releases:
        click.echo(f"no releases yet in {history.home} (router apply DRAFT makes the first)")
        return
    live_version = None
    served = live.served_folder(settings.flows_dir, history)  # a release followed here is served from the history
    try:
        live_version = load_flows(served).version
    except FlowError:
        pass
    for release in releases:
        mark = "*" if release is releases[-1] else " "
        click.echo(f"{mark} {release.line()}")
    where = f"The live folder {settings.flows_dir}" if served == settings.flows_dir else \
        f"The web workers here serve it from the history ({served}), which"
    click.echo(f"* applied. {where} holds flows_version {live_version or '(invalid)'}"
               + ("" if live_version == releases[-1].version else ": it differs from the applied release"))
    client = _client(settings)
    if client is not None:
        applied = live.applied_release(client)
        if applied is not None and (applied.number, applied.version) != (releases[-1].number, releases[-1].version):
            click.echo(f"Redis names release {applied.number} ({applied.version}) as applied: this instance "
                       "installs it within seconds once its web workers run")


COMMANDS = (draft, apply, rollback, versions)
