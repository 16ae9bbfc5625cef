"""Connecting to Redis: one client factory for web and workers, Sentinel URLs, URLs fit to print.

Redis being down is normal for the web tier, not fatal: clients fail fast (short timeouts, no
retries) and callers answer without state (StateUnavailable).
"""
from __future__ import annotations

import re
from typing import NamedTuple, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel


class StateUnavailable(Exception):
    """Redis could not be reached or answered with an error."""


class SentinelURL(NamedTuple):
    hosts: list[tuple[str, int]]
    master_name: str
    password: str | None
    db: int
    sentinel_password: str | None
    broker_url: str  # the same URL without our query options, as kombu wants it


def parse_sentinel_url(url: str) -> SentinelURL | None:
    """`sentinel://:PW@s1:26379/0;sentinel://s2:26379?master_name=helpline` -> its parts; None if
    the URL is not a Sentinel URL. The form is Celery's, plus `master_name` (and `sentinel_password`)."""
    if not url.startswith("sentinel://"):
        return None
    hosts: list[tuple[str, int]] = []
    options: dict[str, str] = {}
    cleaned: list[str] = []
    for part in url.split(";"):
        base, _, query = part.partition("?")
        options.update(parse_qsl(query))
        parsed = urlsplit(base)
        hosts.append((parsed.hostname or "127.0.0.1", parsed.port or 26379))
        cleaned.append(base)
    if not options.get("master_name"):
        raise ValueError("a sentinel:// REDIS_URL needs ?master_name=<name>")
    first = urlsplit(cleaned[0])
    db = first.path.strip("/")
    return SentinelURL(hosts, options["master_name"], unquote(first.password) if first.password else None,
                       int(db) if db.isdigit() else 0, options.get("sentinel_password"), ";".join(cleaned))


def make_redis(url: str, timeout: float = 0.5) -> redis.Redis:
    """A client that fails fast: a webhook must answer within Twilio's 15 s, ideally in milliseconds.
    A sentinel:// URL gives a client of whichever server the Sentinels name as master now."""
    options = dict(socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
                   retry_on_timeout=False, health_check_interval=0, decode_responses=True)
    sentinel = parse_sentinel_url(url)
    if sentinel is None:
        return redis.Redis.from_url(url, **options)
    watchers = Sentinel(sentinel.hosts, sentinel_kwargs={  # type: ignore[no-untyped-call]
        "socket_timeout": timeout, "socket_connect_timeout": timeout, "password": sentinel.sentinel_password})
    master = watchers.master_for(  # type: ignore[no-untyped-call]
        sentinel.master_name, db=sentinel.db, password=sentinel.password, **options)
    return cast(redis.Redis, master)


def redacted_url(url: str) -> str:
    """A Redis URL fit to print: any password (redis://:secret@host, sentinel passwords) shown as ***."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", re.sub(r"([?&](?:sentinel_)?password=)[^&]*", r"\1***", url))
