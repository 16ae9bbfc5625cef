"""Short-lived conversation state in Redis, keyed so that a Redis dump never holds a phone number.

Every key is `hr:<kind>:<HMAC-SHA256(secret, value)>` and every write sets a TTL. Values hold only
where the texter is in the menu and their language. Redis being down is normal here, not fatal: calls
raise StateUnavailable quickly (short timeouts, no retries) and the channel answers statelessly.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

SEEN_TTL_SECONDS = 10 * 60  # Twilio retries a webhook within seconds; ten minutes is ample


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
    hosts, options, cleaned = [], {}, []
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
    watchers = Sentinel(sentinel.hosts, sentinel_kwargs={
        "socket_timeout": timeout, "socket_connect_timeout": timeout, "password": sentinel.sentinel_password})
    return watchers.master_for(sentinel.master_name, db=sentinel.db, password=sentinel.password, **options)


def hashed(secret: bytes, kind: str, value: str) -> str:
    digest = hmac.new(secret, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()[:40]
    return f"hr:{kind}:{digest}"


@dataclass(frozen=True)
class Conversation:
    at: str
    lang: str


def _parse_conversation(raw: str | None) -> Conversation | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return Conversation(at=str(data["at"]), lang=str(data["lang"]))
    except (ValueError, KeyError, TypeError):
        return None


# One round trip for what every text needs first: "is this MessageSid new?" (SET NX, so a retried
# webhook advances nothing) and "where is this texter?" (GET). KEYS: seen key, conversation key.
# ARGV: 1 to check the sid (0 when there is none), the seen key's TTL.
ARRIVE_SCRIPT = """
local fresh = 1
if ARGV[1] == '1' then
  fresh = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) and 1 or 0
end
return {fresh, redis.call('GET', KEYS[2]) or ''}
"""


class ConversationStore:
    def __init__(self, client: redis.Redis, secret: bytes):
        self.client = client
        self.secret = secret
        self._arrive = client.register_script(ARRIVE_SCRIPT)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            raise StateUnavailable(type(exc).__name__) from None

    def arrive(self, message_sid: str, number: str) -> tuple[bool, Conversation | None]:
        """A text came in: (is its MessageSid new, the texter's conversation), in one round trip."""
        seen = hashed(self.secret, "seen", message_sid) if message_sid else "hr:seen:-"
        fresh, raw = self._call(self._arrive, keys=[seen, hashed(self.secret, "conv", number)],
                                args=["1" if message_sid else "0", SEEN_TTL_SECONDS])
        return bool(int(fresh)), _parse_conversation(raw)

    def save(self, number: str, conversation: Conversation, ttl_seconds: int) -> None:
        value = json.dumps({"at": conversation.at, "lang": conversation.lang})
        self._call(self.client.set, hashed(self.secret, "conv", number), value, ex=ttl_seconds)

    def forget(self, number: str) -> None:
        self._call(self.client.delete, hashed(self.secret, "conv", number))

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except (redis.RedisError, OSError):
            return False
