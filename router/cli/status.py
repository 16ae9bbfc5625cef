"""`router status` and `router publish`: what is live where, and the one command that finishes each
half-done change.

Why: an apply while Redis was unreachable, a file edited in the live folder, a web worker that has not
followed, a diversion of the 24-hour line: each leaves the instances disagreeing about what callers
get. `router status` puts the applied release, what each web worker serves (they report it to Redis
every few seconds, flowstore.FlowStore.report), the live folder here, the diversions and closures in
force side by side, and says for each difference the one command that resolves it. Nothing here
prints a secret: Redis URLs are shown without their password.
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone

import click
import redis

from router.inspect import validation
from router import live
from router.live import diversion_rules, signing as release_auth
from router.inspect.validation.services import closure_notes
from router.definition.flowfile import FlowError
from router.definition.model import Flows
from router.definition.hours import LONDON
from router.cli.common import cli_settings
from router.store.connection import make_redis, redacted_url


def _connect(url: str) -> tuple[redis.Redis | None, str | None]:
    client = make_redis(url, timeout=2.0)
    try:
        client.ping()
        return client, None
    except (redis.RedisError, OSError) as exc:
        return None, f"Redis at {redacted_url(url)} cannot be reached ({type(exc).__name__})"


def _describe(release: live.Release | None) -> str:
    if release is None:
        return "none"
    note = f', "{release.note}"' if release.note else ""
    return f"release {release.number} (flows_version {release.version}, {release.action} by {release.who}{note})"


@click.command()
def status() -> None:
    """What is applied, what each web worker serves, the diversions and closures in force, and what to do
    about each difference. Exit 0 when all agree and every 24-hour line is answered, 1 otherwise."""
    settings = cli_settings()
    history = live.History(settings.history_dir())
    todo: list[str] = []
    client, trouble = _connect(settings.redis_url)
    latest = history.latest()
    applied = live.applied_release(client) if client is not None else None
    click.echo(f"Applied (Redis, every instance follows it): {_describe(applied) if client else f'unknown: {trouble}'}")
    click.echo(f"Newest in this machine's history ({history.home}): {_describe(latest)}")
    if trouble:
        todo.append(f"{trouble}: instances serve what they have and diversions cannot change. Bring Redis back "
                    "(docs/deployment.md), then run `router status` again")
    elif latest is not None and (applied is None or latest.number > applied.number):
        todo.append(f"release {latest.number} was applied here while Redis was unreachable, so other instances "
                    f"do not serve it: run `router publish`")
    elif applied is not None and latest is not None and applied.number == latest.number \
            and applied.version != latest.version:
        todo.append(f"release {applied.number} in Redis and here hold different flows (two applies while Redis was "
                    f"away): choose one and put it live again with `router rollback {applied.number}` on the "
                    "machine whose release you keep")
    target = applied if applied is not None and (latest is None or applied.number >= latest.number) else latest
    served = live.served_folder(settings.flows_dir, history)  # a followed release is served from the history
    try:
        live_flows = validation.load_checked(served)
        live_text = f"flows_version {live_flows.version}"
    except FlowError as exc:
        live_flows, live_text = None, f"refused ({len(exc.problems)} problems; router validate {served})"
    where = settings.flows_dir if served == settings.flows_dir else \
        f"{served}: a release applied elsewhere, newer than {settings.flows_dir}"
    click.echo(f"Live folder here ({where}): {live_text}")
    if target is not None and (live_flows is None or live_flows.version != target.version):
        if applied is not None and latest is not None and applied.number > latest.number:
            todo.append(f"this machine has not installed release {applied.number} yet: its web workers do so "
                        "within seconds; if none runs here, nothing needs doing")
        else:
            todo.append(f"the live folder differs from release {target.number} (edited in place, or a copy that "
                        f"failed): put the release back with `router rollback {target.number}`, or keep the "
                        f"edit by applying it: `router draft NEWDIR`, make the edit there, `router apply NEWDIR`")
    if client is not None:
        _workers(client, target, todo)
        _diversions(client, settings, history, todo)
    if live_flows is not None:
        for note in closure_notes(live_flows, datetime.now(LONDON).date(), 14):
            click.echo(f"Closure in the next 14 days: {note}")
    if todo:
        click.echo("To do:")
        for item in todo:
            click.echo(f"  - {item}")
        sys.exit(1)
    click.echo("All agree: nothing to do.")


def _workers(client: redis.Redis, target: live.Release | None, todo: list[str]) -> None:
    reports = live.serving_reports(client)
    if not reports:
        click.echo("Web workers: none has reported in the last minute (none running, or none reaches Redis)")
        todo.append("no web worker reports to Redis: check that the web processes run (docs/operators.md, "
                    "'At 2am'), and that they use this REDIS_URL")
        return
    click.echo(f"Web workers reporting ({len(reports)}):")
    for name, report in sorted(reports.items()):
        problems = report.get("why") or []
        state = "ok" if not problems else "degraded: " + "; ".join(problems)
        click.echo(f"  {name}: flows_version {report.get('flows_version')} from {report.get('source')}: {state}")
        if target is not None and report.get("flows_version") != target.version:
            todo.append(f"{name} serves flows_version {report.get('flows_version')}, not release {target.number}: "
                        "it follows within seconds; if it stays so, its /healthz (and log) says why. Restart it "
                        "if it does not recover (docs/operators.md, 'At 2am')")


def _diversions(client: redis.Redis, settings, history: live.History, todo: list[str]) -> None:
    active = live.diversions(client)
    for diversion in active.values():
        click.echo(f"Diversion in force: {diversion.line()}" + (f" (by {diversion.who})" if diversion.who else ""))
    flows: Flows | None
    try:
        flows = validation.load_checked(live.served_folder(settings.flows_dir, history))
    except FlowError:
        latest = history.latest()
        try:
            flows = validation.load_checked(history.folder(latest.number)) if latest else None
        except FlowError:
            flows = None
    for sid, reason in diversion_rules.emergency_lines_down_by_service(flows, active,
                                                                       datetime.now(timezone.utc)).items():
        todo.append(f"{reason}. If that is not meant, end it now: `router undivert {sid}`")


@click.command()
def publish() -> None:
    """Tell every instance about the release applied here while Redis was unreachable."""
    settings = cli_settings()
    history = live.History(settings.history_dir())
    client, trouble = _connect(settings.redis_url)
    if client is None:
        click.echo(f"refused: {trouble}: bring it back first", err=True)
        sys.exit(1)
    with history.locked():
        latest = history.latest()
        applied = live.applied_release(client)
        if latest is None:
            click.echo("nothing to publish: no release has been applied here")
            return
        if applied is not None and applied.number > latest.number:
            click.echo(f"nothing to publish: Redis names release {applied.number}, newer than this machine's "
                       f"{latest.number}; this machine's web workers install it")
            return
        if applied is not None and applied.number == latest.number:
            if applied.version == latest.version:
                click.echo(f"nothing to publish: every instance already follows release {applied.number}")
                return
            click.echo(f"refused: release {applied.number} in Redis holds other flows than release {latest.number} "
                       f"here: put the one to keep live again with `router rollback {latest.number}`", err=True)
            sys.exit(1)
        try:
            live.publish_if(client, latest, live.read_files(history.folder(latest.number)), applied)
        except redis.WatchError:
            click.echo("refused: another release was applied while publishing: run `router status`", err=True)
            sys.exit(1)
        except release_auth.Unsigned as exc:
            click.echo(f"refused: {exc} (docs/deployment.md, 'The flows signing key')", err=True)
            sys.exit(1)
    click.echo(f"published release {latest.number} (flows_version {latest.version}): every instance serves it "
               "within seconds (router status shows them)")


COMMANDS = (status, publish)
