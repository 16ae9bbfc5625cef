"""Pending follow-up texts in Redis: the only place a phone number is kept, and only until it is sent.

- hr:fu:<id>        hash: to, from, body, callback, status (pending|sending), attempt_at; TTL until
                    a day after it is due
- hr:fu-due         sorted set of ids by due time ('now': 0, due whatever the clocks say); a dispatcher
                    leases due ids (moves their score on) so a lost task is dispatched again, never dropped
- hr:fu-by:<hash>   set of ids per keyed hash of the number, so STOP cancels them at once
- hr:fu-lock:<id>   short lock: one worker at a time works on a follow-up
- hr:fu-kick        "1" from the moment a dispatch is asked for a 'now' follow-up until it starts: more
                    'now' follow-ups meanwhile publish nothing (KICK_SECONDS)
The id is derived from what triggered it (a CallSid or MessageSid and the service), so a retried
webhook or a duplicate trigger finds the same id and adds nothing.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import time
from datetime import datetime
from typing import NamedTuple

import redis

from router.state import hashed

DUE_KEY = "hr:fu-due"
KICK_KEY = "hr:fu-kick"
KICK_SECONDS = 5
KEEP_AFTER_DUE_SECONDS = 24 * 3600
# One worker at a time per follow-up; shorter than the broker's visibility timeout, longer than a send.
LOCK_SECONDS = int(os.environ.get("FOLLOWUP_LOCK_SECONDS", "20"))
# A dispatched follow-up not finished by then is dispatched again (its task was lost).
LEASE_SECONDS = int(os.environ.get("FOLLOWUP_LEASE_SECONDS", "120"))


# KEYS: due. ARGV: now, limit, leased until. Atomic, so two dispatchers never lease the same id.
_LEASE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, fid in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[3], fid) end
return ids
"""


class Added(NamedTuple):
    new: bool    # False: this id is already pending (a duplicate trigger); nothing was stored
    kick: bool   # the caller should publish a dispatch: at_once, and none was asked for yet


def followup_id(secret: bytes, trigger: str, service_id: str) -> str:
    return hmac.new(secret, f"followup\0{trigger}\0{service_id}".encode(), hashlib.sha256).hexdigest()[:32]


class PendingFollowups:
    def __init__(self, client: redis.Redis, secret: bytes):
        self.client = client
        self.secret = secret
        self._lease = client.register_script(_LEASE)

    def _key(self, fid: str) -> str:
        return f"hr:fu:{fid}"

    def add(self, fid: str, *, to: str, from_: str, body: str, callback: str, send_at: datetime,
            at_once: bool = False) -> Added:
        """Store a follow-up once (new=False if this id is already pending: a duplicate trigger).
        at_once ('now'): due at once whatever the clocks of web and workers say, and a dispatch is asked
        for unless one already is (kick=True: the caller publishes it)."""
        due = send_at.timestamp()
        ttl = max(int(due - time.time()), 0) + KEEP_AFTER_DUE_SECONDS
        key = self._key(fid)
        by_number = hashed(self.secret, "fu-by", to)
        if not self.client.set(f"hr:fu-made:{fid}", "1", nx=True, ex=ttl):
            return Added(False, False)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, mapping={"to": to, "from": from_, "body": body, "callback": callback,
                                "status": "pending", "by": by_number})
        pipe.expire(key, ttl)
        pipe.sadd(by_number, fid)
        pipe.expire(by_number, ttl)
        pipe.zadd(DUE_KEY, {fid: 0 if at_once else due})
        pipe.expire(DUE_KEY, KEEP_AFTER_DUE_SECONDS * 8)
        if at_once:  # in the same transaction as the ZADD: a dispatch that cleared the flag sees the id
            pipe.set(KICK_KEY, "1", nx=True, ex=KICK_SECONDS)
        results = pipe.execute()
        return Added(True, at_once and bool(results[-1]))

    def begin_dispatch(self) -> None:
        """A dispatch starts (or the one asked for could not be published): any 'now' follow-up added
        from now on asks for a dispatch of its own."""
        self.client.delete(KICK_KEY)

    def get(self, fid: str) -> dict[str, str] | None:
        data = self.client.hgetall(self._key(fid))
        return data or None

    def lease_due(self, now: float | None = None, limit: int = 100) -> list[str]:
        """Ids due now; each is leased (its due time moved on) so a lost task is dispatched again later."""
        now = time.time() if now is None else now
        return list(self._lease(keys=[DUE_KEY], args=[repr(now), limit, repr(now + LEASE_SECONDS)]))

    def lock(self, fid: str) -> bool:
        return bool(self.client.set(f"hr:fu-lock:{fid}", "1", nx=True, ex=LOCK_SECONDS))

    def unlock(self, fid: str) -> None:
        self.client.delete(f"hr:fu-lock:{fid}")

    def mark_sending(self, fid: str, attempt_at: float) -> None:
        self.client.hset(self._key(fid), mapping={"status": "sending", "attempt_at": repr(attempt_at)})

    def finish(self, fid: str, message_sid: str | None = None) -> None:
        """Sent or cancelled: forget the number and the text; only the id's 'made' marker stays (TTL).
        With the sid of the message that was sent, that message can settle no other follow-up."""
        data = self.client.hgetall(self._key(fid))
        pipe = self.client.pipeline(transaction=True)
        if message_sid:
            pipe.set(f"hr:fu-sid:{message_sid}", fid, ex=KEEP_AFTER_DUE_SECONDS)
        pipe.delete(self._key(fid))
        pipe.zrem(DUE_KEY, fid)
        if data.get("by"):
            pipe.srem(data["by"], fid)
        pipe.execute()

    def settle_sending(self, to: str, message_sid: str) -> str | None:
        """Twilio reported on message `message_sid` to `to`. If it is not yet known as some follow-up's
        text, it is the text of the follow-up for that number caught mid-send longest ago (its worker
        died before hearing Twilio's answer): that one was sent and must never be sent again. One
        message settles at most one follow-up."""
        if not self.client.set(f"hr:fu-sid:{message_sid}", "?", nx=True, ex=KEEP_AFTER_DUE_SECONDS):
            return None  # this message is already accounted for
        sending = []
        for fid in self.client.smembers(hashed(self.secret, "fu-by", to)):
            data = self.client.hmget(self._key(fid), "status", "attempt_at")
            if data[0] == "sending":
                sending.append((float(data[1] or 0), fid))
        if not sending:
            return None
        fid = min(sending)[1]
        self.finish(fid, message_sid)
        return fid

    def cancel_for_number(self, to: str) -> int:
        by_number = hashed(self.secret, "fu-by", to)
        ids = self.client.smembers(by_number)
        for fid in ids:
            self.finish(fid)
        self.client.delete(by_number)
        return len(ids)

    def count_pending(self) -> int:
        return int(self.client.zcard(DUE_KEY))
