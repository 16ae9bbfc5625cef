"""`router twilio check` and `router twilio configure`: the real account, before go-live (router/cli/twilio_setup.py).

Credentials and the deployment's settings come from the environment (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
PUBLIC_BASE_URL, HELPLINE_NUMBERS, FOLLOWUP_SENDER, ...), as the app reads them; nothing secret is printed.
"""
from __future__ import annotations

import sys

import click

from router.cli import twilio_setup
from router.cli.common import cli_settings


def _client(settings):
    # the one place that builds the REST client; twilio is loaded only by the commands that use it
    from router.twilio_rest import NotConfigured, make_client

    try:
        return make_client(settings)
    except NotConfigured:
        click.echo("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must both be set", err=True)
        sys.exit(2)


@click.group()
def twilio() -> None:
    """The Twilio account: check it is set up for the helpline, and point its numbers here."""


@twilio.command()
def check() -> None:
    """Read-only: check the account, the helpline numbers' webhooks and the follow-up sender, and print a
    checklist with the fix for each failure. Exit 1 if anything failed."""
    settings = cli_settings()
    items = twilio_setup.check(_client(settings), settings)
    for item in items:
        for line in item.lines():
            click.echo(line)
    failed = sum(item.state == twilio_setup.FAIL for item in items)
    click.echo(f"{failed} to fix" if failed else "ready: nothing to fix", err=bool(failed))
    sys.exit(1 if failed else 0)


@twilio.command()
@click.option("--base-url", help="The https:// address Twilio is to call (default: PUBLIC_BASE_URL).")
@click.option("--yes", is_flag=True, help="Do not ask before changing the numbers.")
def configure(base_url: str | None, yes: bool) -> None:
    """Point each of HELPLINE_NUMBERS at this deployment: /voice, /voice/status and /sms, all POST."""
    settings = cli_settings()
    base = (base_url or settings.public_base_url or "").rstrip("/")
    if not base.startswith("https://"):
        raise click.UsageError("give --base-url or PUBLIC_BASE_URL: the https:// address Twilio is to call")
    if not settings.helpline_numbers:
        raise click.UsageError("set HELPLINE_NUMBERS to the helpline's number(s) in E.164")
    if not yes:
        click.confirm(f"Point {', '.join(settings.helpline_numbers)} at {base}?", abort=True)
    try:
        for line in twilio_setup.configure(_client(settings), settings, base):
            click.echo(line)
    except LookupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo("done: run `router twilio check` to see the whole checklist")
