"""Where `make run` keeps its local data, and how a tool run by hand beside it finds the embedded Redis.

`make run` (router/dev/run.py) gives every process it starts REDIS_URL; it also writes the embedded
Redis's URL (with its random password) to .data/redis.url (HELPLINE_DATA_DIR), 0600, for the operators'
commands run by hand in another terminal (`router status`, `router divert`, `router apply`). Production
settings (router.settings) never read that file: only the CLI asks here, and only when REDIS_URL is not set.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from router.settings import REPO_ROOT, Settings

REDIS_URL_FILE = "redis.url"


def data_dir(env: dict[str, str] | None = None) -> Path:
    """`make run`'s private folder: HELPLINE_DATA_DIR, or .data in the repository."""
    env = dict(os.environ if env is None else env)
    return Path(env.get("HELPLINE_DATA_DIR") or REPO_ROOT / ".data")


def local_redis_url(env: dict[str, str] | None = None) -> str | None:
    """The URL of the Redis a running `make run` started, if one is running (its file exists)."""
    try:
        return (data_dir(env) / REDIS_URL_FILE).read_text().strip() or None
    except OSError:
        return None


def local_auth_token(settings: Settings, env: dict[str, str] | None = None) -> str | None:
    """TWILIO_AUTH_TOKEN (from settings), else the local one `make run` made (.data/dev-auth-token), for
    `router simulate --url` against an instance started by `make run`."""
    if settings.auth_token:
        return settings.auth_token
    try:
        return (data_dir(env) / "dev-auth-token").read_text().strip() or None
    except OSError:
        return None


def with_local_redis(settings: Settings, env: dict[str, str] | None = None) -> Settings:
    """`settings`, on `make run`'s embedded Redis when REDIS_URL is not set and one is running."""
    env = dict(os.environ if env is None else env)
    url = None if env.get("REDIS_URL") else local_redis_url(env)
    return dataclasses.replace(settings, redis_url=url) if url else settings
