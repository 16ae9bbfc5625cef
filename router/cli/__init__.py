"""`router`: the operators' command line for the flow files and what is live. This module is only the
click group; each family of commands lives in its own module:

- validate.py: `validate` (the schema and router.inspect.validation, with file and line) and
  `fingerprint` (the review line for a phrase a fluent speaker has read)
- play.py: `simulate` (one call or text conversation through the real app) and `scenarios` (every
  journey in scenarios.yaml, PASS or FAIL; `check` is its old name, a hidden alias)
- draw.py: `graph` (the menu tree)
- live.py: `draft`, `apply`, `rollback`, `versions` (changing what callers get: releases)
- divert.py: `divert`, `undivert` (send a down line's callers elsewhere for a while)
- status.py: `status`, `publish` (what is live where; finish a half-done change)
- twilio_account.py: `twilio check`, `twilio configure` (the real Twilio account)
- common.py: what several commands share (the folder argument, the refusal message)

Why a command line: helpline staff change the menu, services and wording in YAML; before a change goes
live they need to see every mistake with its file and line (validate), hear and read what callers and
texters will get (simulate), confirm the journeys that matter still work (scenarios) and see the whole
menu (graph). Each command is a thin layer over router.inspect, router.simulator and router.live, which
the tests use directly.
"""
from __future__ import annotations

import click

from router.cli import divert, draw, live, play, status, validate
from router.cli.twilio_account import twilio


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Tools for the helpline's flow files (menu, services, wording). Start with `router validate`."""


for _command in validate.COMMANDS + play.COMMANDS + draw.COMMANDS + live.COMMANDS + divert.COMMANDS \
        + status.COMMANDS + (twilio,):
    main.add_command(_command)
