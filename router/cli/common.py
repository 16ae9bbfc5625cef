"""What several `router` commands share: the flow folder argument and its default, the way a refused
folder is printed, quiet logs in a terminal, and the diversions in force.

Why a module of its own: validate, simulate, scenarios and graph each take a flow folder and must say
the same thing, in the same words, when the app would refuse it; keeping that here means an operator
reads one message whichever command found the problem.
"""
from __future__ import annotations

import logging
from pathlib import Path

import click
import redis

from router.definition.flowfile import FlowError
from router.live import diversions as live_diversions
from router.dev.local import with_local_redis
from router.settings import Settings, load_settings
from router.store.connection import make_redis

FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)


def cli_settings() -> Settings:
    """The settings every command takes, from this one place: the environment's, read by
    router.settings; without REDIS_URL, beside a running `make run`, its embedded Redis (production
    settings never read `make run`'s .data/redis.url: router.dev.local does, for commands run by hand)."""
    return with_local_redis(load_settings())


def default_folder(folder: Path | None) -> Path:
    """The folder given, else the live flows (FLOWS_DIR, or flows/)."""
    return folder if folder is not None else cli_settings().flows_dir


def quiet_logs() -> None:
    """The app logs JSON lines for production; in a terminal only its warnings and errors matter."""
    logging.getLogger().setLevel(logging.WARNING)


def print_refused(exc: FlowError) -> None:
    for problem in exc.problems:
        click.echo(str(problem), err=True)
    click.echo("the app refuses these flow files: fix the errors above (router validate shows them all)",
               err=True)


def relative(path: Path) -> str:
    """`path` as the operator would type it from here, when it is below the current directory."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def diversions_in_force() -> dict:
    """The diversions in Redis now; none if Redis cannot be reached (the tools work without it)."""
    try:
        return live_diversions(make_redis(cli_settings().redis_url, timeout=1.0))
    except (redis.RedisError, OSError, ValueError):
        return {}
