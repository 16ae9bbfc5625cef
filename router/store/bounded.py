"""Reading a value from Redis only when it is no larger than anything the app writes.

Why: what web workers read from Redis every second (the applied release, diversions: router/live) could
be replaced by anyone who can write to that Redis; a value of many megabytes would make every worker
parse it. These reads check the size inside Redis first (scripts/bounded_get.lua, bounded_hgetall.lua)
and refuse a larger value unread (TooLarge).
"""
from __future__ import annotations

from typing import cast

import redis

from router.store import scripts


class TooLarge(Exception):
    """A value in Redis is larger than anything the app writes: refused without being parsed."""


def bounded_get(client: redis.Redis, key: str, max_bytes: int) -> bytes | str | None:
    value = scripts.load(client, "bounded_get")(keys=[key], args=[max_bytes])
    if value == -1:
        raise TooLarge(key)
    return cast("bytes | str | None", value)


def bounded_hgetall(client: redis.Redis, key: str, max_fields: int, max_bytes: int) -> dict[str, str]:
    flat = scripts.load(client, "bounded_hgetall")(keys=[key], args=[max_fields, max_bytes])
    if flat in (-1, -2):
        raise TooLarge(key)
    return dict(zip(flat[::2], flat[1::2]))
