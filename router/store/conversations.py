"""Short-lived conversation state of texters in Redis, keyed so that a Redis dump never holds a phone number.

A text's arrival is one round trip (scripts/arrive.lua): is its MessageSid new, where is the texter, the
counts for the reply limits, and its deletion from Twilio queued (router/store/deletions.py's queue,
first due a minute on, after it is answered). With the conversation saved when it moves on, a first
text costs the web tier two Redis round trips (tests/test_store_round_trips.py).

Every key is a keyed hash of the number or sid (router/store/keys.py) and every write sets a TTL. Values
hold only where the texter is in the menu and their language. Redis being down is normal here, not
fatal: calls raise StateUnavailable quickly (short timeouts, no retries) and the channel answers
statelessly.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import redis

from router.store import deletions, keys, scripts
from router.store.connection import StateUnavailable

# Twilio retries a webhook within seconds; a week also makes a captured signed text, replayed, a mere
# retry that advances, books and cancels nothing (issue 18: replays). One small keyed hash per text.
SEEN_TTL_SECONDS = 7 * 24 * 3600
GLOBAL_WINDOW_SECONDS = 60


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


class Arrival(NamedTuple):
    fresh: bool                        # a new MessageSid (False: Twilio retried the webhook)
    conversation: Conversation | None  # where the texter is in the menu, if anywhere
    sender_count: int                  # texts from this sender in the current window (0: not counted)
    global_count: int                  # texts from everyone in the current minute (0: not counted)
    deletion_queued: bool = False      # the inbound text's deletion from Twilio is queued
    drain_wanted: bool = False         # ... and no drain was asked for yet: the caller publishes one


def global_counter_key(now: float) -> str:
    return keys.replies_in_minute(int(now // GLOBAL_WINDOW_SECONDS))


class ConversationStore:
    def __init__(self, client: redis.Redis, secret: bytes, *, first_delete_after_seconds: float | None = None):
        self.client = client
        self.secret = secret
        self.first_delete_after_seconds = first_delete_after_seconds  # None: deletions' default
        self._arrive = scripts.load(client, "arrive")
        self._urgent = scripts.load(client, "urgent")

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            raise StateUnavailable(type(exc).__name__) from None

    def arrive(self, message_sid: str, number: str, sender_window_seconds: int = 1800) -> Arrival:
        """A text came in: is its MessageSid new, the texter's conversation, the sender's (sliding
        window) and everyone's counts, and (for a Twilio MessageSid) its deletion from Twilio queued, in
        one round trip (scripts/arrive.lua)."""
        now = time.time()
        member = f"{deletions.KINDS['message']}:{message_sid}" if deletions.valid_sid("message", message_sid) else ""
        script_keys = [keys.seen(self.secret, message_sid), keys.conversation(self.secret, number),
                       keys.sender_replies(self.secret, number), global_counter_key(now),
                       keys.DELETIONS_DUE, keys.DELETIONS_INFO, keys.DELETION_KICK]
        result = self._call(self._arrive, keys=script_keys, args=[
            "1" if message_sid else "0", SEEN_TTL_SECONDS, sender_window_seconds, 2 * GLOBAL_WINDOW_SECONDS,
            f"{now:.6f}", member, f"{now:.6f}", deletions.KEEP_SECONDS, deletions.KICK_SECONDS,
            f"{max(self._deletion_delay(), 0.0):.6f}"])
        values = list(result)
        fresh, raw, _, sender, everyone, deletion = values + [1, "", "", 0, 0, -1][len(values):]
        queued = int(deletion) >= 0
        return Arrival(bool(int(fresh)), _parse_conversation(raw), int(sender or 0), int(everyone or 0),
                       queued, queued and int(deletion) == 1)

    def _deletion_delay(self) -> float:
        given = self.first_delete_after_seconds
        return deletions.FIRST_DELETE_AFTER_SECONDS if given is None else given

    def seen_before(self, message_sid: str) -> bool:
        """Was this MessageSid answered already (a retry, or a replay)? False when Redis cannot say."""
        if not message_sid:
            return False
        try:
            return bool(self.client.exists(keys.seen(self.secret, message_sid)))
        except (redis.RedisError, OSError):
            return False

    def urgent_allowed(self, number: str, per_minute: int) -> bool:
        """May an urgent text past the other limits be answered? (scripts/urgent.lua.) True if Redis
        cannot say."""
        try:
            return bool(self._urgent(keys=[keys.urgent_replies(self.secret, number)],
                                     args=[f"{time.time():.6f}", per_minute]))
        except (redis.RedisError, OSError):
            return True

    def save(self, number: str, conversation: Conversation, ttl_seconds: int) -> None:
        value = json.dumps({"at": conversation.at, "lang": conversation.lang})
        self._call(self.client.set, keys.conversation(self.secret, number), value, ex=ttl_seconds)

    def forget(self, number: str) -> None:
        self._call(self.client.delete, keys.conversation(self.secret, number))

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except (redis.RedisError, OSError):
            return False
