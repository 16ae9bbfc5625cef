"""`router divert | undivert`: send a down line's callers elsewhere for a while, within the rules.

Why apart from live.py (releases): a diversion changes no flow file and makes no release; it is checked by
router.live.diversion_rules (the fallback rules, and the 24-hour lines kept) and kept in Redis by
router.live (diversion_store), which the web process shares.
"""
from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta, timezone

import click

from router import live
from router.live import diversion_rules, signing as release_auth
from router.cli.live import _client, _live_flows, _who
from router.definition.hours import LONDON
from router.cli.common import cli_settings


# ------------------------------------------------------------------ diversions
# '07:30' means the next 07:30 only when that is within this long: at 23:00, the morning; at 09:32,
# '09:29' is a slip (or a clock read wrong), not "tomorrow", and is refused with the time it would mean.
UNTIL_NEXT_DAY_WITHIN = timedelta(hours=12)


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def parse_until(text: str, now: datetime) -> datetime:
    """'07:30' (the next 07:30, London), '2026-12-25 09:00' (London), '90m' or '2h' (from now)."""
    text = text.strip()
    if match := re.fullmatch(r"(\d+)\s*([mh])", text):
        amount = int(match.group(1))
        return now + (timedelta(minutes=amount) if match.group(2) == "m" else timedelta(hours=amount))
    if match := re.fullmatch(r"(\d{1,2}):(\d{2})", text):
        local = now.astimezone(LONDON)
        try:
            at = local.replace(hour=int(match.group(1)), minute=int(match.group(2)), second=0, microsecond=0)
        except ValueError:
            raise click.BadParameter(f"{text} is not a time of day", param_hint="--until") from None
        if at > local:
            return at
        tomorrow = at + timedelta(days=1)
        if tomorrow - local > UNTIL_NEXT_DAY_WITHIN:
            raise click.BadParameter(
                f"{text} has passed today (it is {local:%H:%M} now), so it would mean tomorrow, "
                f"{tomorrow:%a %d %b %Y %H:%M} (London), {_span(tomorrow - local)} from now. If you meant that, "
                f"write --until '{tomorrow:%Y-%m-%d %H:%M}'; for a while from now, write e.g. --until 2h",
                param_hint="--until")
        return tomorrow
    if match := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\s+(\d{1,2}:\d{2})", text):
        try:
            at = datetime.strptime(f"{match.group(1)} {match.group(2)}", "%Y-%m-%d %H:%M").replace(tzinfo=LONDON)
        except ValueError:
            raise click.BadParameter(f"{text!r} is not a real date and time", param_hint="--until") from None
        if at <= now:
            raise click.BadParameter(f"{at:%a %d %b %Y %H:%M} (London) is in the past: it is "
                                     f"{now.astimezone(LONDON):%a %d %b %Y %H:%M} now", param_hint="--until")
        return at
    raise click.BadParameter("use a time like 07:30, a date and time like '2026-12-25 09:00', or 90m / 2h",
                             param_hint="--until")


@click.command()
@click.argument("service", required=False)
@click.option("--to", "other", default=None, help="The service to put its callers through to instead.")
@click.option("--until", "until", default=None,
              help="When it ends by itself: 07:30, '2026-12-25 09:00' (London) or 2h. Default: 12 hours.")
@click.option("--who", default=None, help="Who diverts (default: $ROUTER_OPERATOR or your login).")
def divert(service: str | None, other: str | None, until: str | None, who: str | None) -> None:
    """Send the callers and texters of SERVICE to OTHER for a while (its line is down), on every web worker
    within seconds; it ends by itself. Without SERVICE: list the diversions in force.

    Undo it with `router undivert SERVICE`."""
    settings = cli_settings()
    client = _client(settings)
    if client is None:
        click.echo("refused: diversions live in Redis, which cannot be reached", err=True)
        sys.exit(1)
    history = live.History(settings.history_dir())
    flows = _live_flows(settings, history)
    if service is None:
        current = live.diversions(client)
        ignored = diversion_rules.unsafe_diversions(flows, current)
        for sid, diversion in current.items():
            click.echo(diversion.line() + (f" (NOT IN FORCE: {ignored[sid]})" if sid in ignored else ""))
        if not current:
            click.echo("no diversions in force")
        return
    if other is None:
        raise click.UsageError("say where to: router divert SERVICE --to OTHER")
    if flows is None:
        click.echo("refused: no valid flows are live to check the services against", err=True)
        sys.exit(1)
    now = datetime.now(timezone.utc)
    end = parse_until(until, now) if until else now + live.DEFAULT_DIVERSION
    problems = diversion_rules.check_diversion(flows, service, other, end, now, live.diversions(client))
    if problems:
        for problem in problems:
            click.echo(f"refused: {problem}", err=True)
        click.echo("nothing changed", err=True)
        sys.exit(1)
    try:
        diversion = live.divert(client, service, other, end, _who(who))
    except release_auth.Unsigned as exc:
        click.echo(f"refused: {exc} (docs/deployment.md, 'The flows signing key')", err=True)
        sys.exit(1)
    click.echo(f"diverted: {diversion.line()}. Every web worker follows within a few seconds "
               "(/healthz lists diversions).")
    click.echo(f"While it lasts, {diversion_rules.what_callers_get(flows, diversion)}")


@click.command()
@click.argument("service")
def undivert(service: str) -> None:
    """End the diversion of SERVICE now."""
    client = _client(cli_settings())
    if client is None:
        click.echo("refused: diversions live in Redis, which cannot be reached", err=True)
        sys.exit(1)
    try:
        ended = live.undivert(client, service)
    except release_auth.Unsigned as exc:
        click.echo(f"refused: {exc} (docs/deployment.md, 'The flows signing key')", err=True)
        sys.exit(1)
    if ended:
        click.echo(f"{service}: diversion ended; every web worker follows within a few seconds")
    else:
        click.echo(f"{service} is not diverted")


COMMANDS = (divert, undivert)
