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

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SEEN_TTL_SECONDS = 10 * 60  # Twilio retries a webhook within seconds; ten minutes is ample


class StateUnavailable(Exception):
    """Redis could not be reached or answered with an error."""


def make_redis(url: str, timeout: float = 0.5) -> redis.Redis:
    """A client that fails fast: a webhook must answer within Twilio's 15 s, ideally in milliseconds."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False, health_check_interval=0, decode_responses=True,
    )


def hashed(secret: bytes, kind: str, value: str) -> str:
    digest = hmac.new(secret, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()[:40]
    return f"hr:{kind}:{digest}"


@dataclass(frozen=True)
class Conversation:
    at: str
    lang: str


class ConversationStore:
    def __init__(self, client: redis.Redis, secret: bytes):
        self.client = client
        self.secret = secret

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            raise StateUnavailable(type(exc).__name__) from None

    def load(self, number: str) -> Conversation | None:
        raw = self._call(self.client.get, hashed(self.secret, "conv", number))
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return Conversation(at=str(data["at"]), lang=str(data["lang"]))
        except (ValueError, KeyError, TypeError):
            return None

    def save(self, number: str, conversation: Conversation, ttl_seconds: int) -> None:
        value = json.dumps({"at": conversation.at, "lang": conversation.lang})
        self._call(self.client.set, hashed(self.secret, "conv", number), value, ex=ttl_seconds)

    def forget(self, number: str) -> None:
        self._call(self.client.delete, hashed(self.secret, "conv", number))

    def first_time(self, message_sid: str) -> bool:
        """True the first time a MessageSid is seen (Twilio retries a webhook it got no answer to)."""
        return bool(self._call(self.client.set, hashed(self.secret, "seen", message_sid), "1",
                               nx=True, ex=SEEN_TTL_SECONDS))

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except (redis.RedisError, OSError):
            return False
