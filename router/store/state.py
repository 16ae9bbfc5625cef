"""Short-lived conversation state in Redis, keyed so that a Redis dump never holds a phone number.

Every key is `hr:<kind>:<HMAC-SHA256(secret, value)>` and every write sets a TTL. Values hold only
where the texter is in the menu and their language. Redis being down is normal here, not fatal: calls
raise StateUnavailable quickly (short timeouts, no retries) and the channel answers statelessly.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import json
import time
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

# Twilio retries a webhook within seconds; a week also makes a captured signed text, replayed, a mere
# retry that advances, books and cancels nothing (issue 18: replays). One small keyed hash per text.
SEEN_TTL_SECONDS = 7 * 24 * 3600


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


def redacted_url(url: str) -> str:
    """A Redis URL fit to print: any password (redis://:secret@host, sentinel passwords) shown as ***."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", re.sub(r"([?&](?:sentinel_)?password=)[^&]*", r"\1***", url))


def hashed(secret: bytes, kind: str, value: str) -> str:
    digest = hmac.new(secret, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()[:40]
    return f"hr:{kind}:{digest}"


@dataclass(frozen=True)
class Conversation:
    at: str
    lang: str


def recent_key(secret: bytes, number: str) -> str:
    """The key that says "this number was sent (or will be sent) a follow-up lately": its value is only
    the language of that follow-up; written by router/store/limits.py when one is booked."""
    return hashed(secret, "fu-to", number)


def _parse_recent(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return str(json.loads(raw)["lang"])
    except (ValueError, KeyError, TypeError):
        return None


def _parse_conversation(raw: str | None) -> Conversation | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return Conversation(at=str(data["at"]), lang=str(data["lang"]))
    except (ValueError, KeyError, TypeError):
        return None


# One round trip for what every text needs first: "is this MessageSid new?" (SET NX, so a retried
# webhook advances nothing), "where is this texter?" (GET), and, for a new text, how many this sender
# has sent in the last `window` seconds (a sliding window: a sorted set of arrival times, issue 19) and
# everyone together this minute (INCR, TTL set with the first). The third value is always '' now: the
# "texted lately" marker is no longer read (issue 18: answers never depend on what was sent).
# KEYS: seen key, conversation key, (unused), sender's arrivals, global counter.
# ARGV: 1 to check the sid (0 when there is none), the seen key's TTL, the sender window, the global
# window (seconds), now (seconds, with a fraction).
ARRIVE_SCRIPT = """
local fresh = 1
if ARGV[1] == '1' then
  fresh = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) and 1 or 0
end
local sender, everyone = 0, 0
if fresh == 1 and KEYS[4] then
  local now = tonumber(ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[3]))
  redis.call('ZADD', KEYS[4], now, KEYS[1] .. '@' .. ARGV[5])
  sender = redis.call('ZCARD', KEYS[4])
  redis.call('EXPIRE', KEYS[4], ARGV[3])
  everyone = redis.call('INCR', KEYS[5])
  if redis.call('TTL', KEYS[5]) < 0 then redis.call('EXPIRE', KEYS[5], ARGV[4]) end
end
return {fresh, redis.call('GET', KEYS[2]) or '', '', sender, everyone}
"""

# An urgent text (999, 55, help, a stop, words of crisis) past every other limit: answered if this sender
# had fewer than ARGV[2] such answers in the last minute (a sliding window), so never silenced for long.
# KEYS: the sender's urgent answers. ARGV: now, the most a minute. -> 1 (answer it) or 0.
URGENT_SCRIPT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('EXPIRE', KEYS[1], 60)
return 1
"""
GLOBAL_WINDOW_SECONDS = 60


class Arrival(NamedTuple):
    fresh: bool                        # a new MessageSid (False: Twilio retried the webhook)
    conversation: Conversation | None  # where the texter is in the menu, if anywhere
    recent_lang: str | None            # always None now (issue 18); kept for the simulator's stand-in
    sender_count: int                  # texts from this sender in the current window (0: not counted)
    global_count: int                  # texts from everyone in the current minute (0: not counted)


def global_counter_key(now: float) -> str:
    return f"hr:lim:replies:{int(now // GLOBAL_WINDOW_SECONDS)}"


class ConversationStore:
    def __init__(self, client: redis.Redis, secret: bytes):
        self.client = client
        self.secret = secret
        self._arrive = client.register_script(ARRIVE_SCRIPT)
        self._urgent = client.register_script(URGENT_SCRIPT)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            raise StateUnavailable(type(exc).__name__) from None

    def arrive(self, message_sid: str, number: str, sender_window_seconds: int = 1800) -> Arrival:
        """A text came in: is its MessageSid new, the texter's conversation, and the sender's (sliding
        window) and everyone's counts, in one round trip."""
        seen = hashed(self.secret, "seen", message_sid) if message_sid else "hr:seen:-"
        now = time.time()
        keys = [seen, hashed(self.secret, "conv", number), recent_key(self.secret, number),
                hashed(self.secret, "lim-replies", number), global_counter_key(now)]
        result = self._call(self._arrive, keys=keys, args=[
            "1" if message_sid else "0", SEEN_TTL_SECONDS, sender_window_seconds, 2 * GLOBAL_WINDOW_SECONDS,
            f"{now:.6f}"])
        fresh, raw, recent, sender, everyone = (list(result) + ["", "", 0, 0])[:5]
        return Arrival(bool(int(fresh)), _parse_conversation(raw), _parse_recent(recent),
                       int(sender or 0), int(everyone or 0))

    def seen_before(self, message_sid: str) -> bool:
        """Was this MessageSid answered already (a retry, or a replay)? False when Redis cannot say."""
        if not message_sid:
            return False
        try:
            return bool(self.client.exists(hashed(self.secret, "seen", message_sid)))
        except (redis.RedisError, OSError, AttributeError):  # AttributeError: the simulator's memory store
            return False

    def urgent_allowed(self, number: str, per_minute: int) -> bool:
        """May an urgent text past the other limits be answered? (URGENT_SCRIPT.) True if Redis cannot say."""
        try:
            return bool(self._urgent(keys=[hashed(self.secret, "lim-urgent", number)],
                                     args=[f"{time.time():.6f}", per_minute]))
        except (redis.RedisError, OSError):
            return True

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
