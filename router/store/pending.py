"""Pending follow-up texts in Redis: the only place a phone number is kept, sealed, and only until it is sent.

- hr:fu:<id>        hash: sealed (the number, sender, text and callback URL, AES-GCM encrypted with a key
                    Redis never sees: router/store/sealing.py), status (pending|sending), attempt_at, by; TTL
                    until a day after it is due
- hr:fu-due         sorted set of ids by due time ('now': 0, due whatever the clocks say); a dispatcher
                    leases due ids (moves their score on) so a lost task is dispatched again, never dropped;
                    an id whose follow-up expired unsent is removed (and counted) instead of leased
- hr:fu-by:<hash>   set of ids per keyed hash of the number, so STOP cancels them at once
- hr:fu-lock:<id>   short lock: one worker at a time works on a follow-up
- hr:fu-kick        "1" from the moment a dispatch is asked for a 'now' follow-up until it starts: more
                    'now' follow-ups meanwhile publish nothing (KICK_SECONDS)
- hr:fu-made:<id>   "1" once the id was stored: a duplicate trigger adds nothing (TTL as hr:fu:<id>)
- hr:fu-sids        sorted set of the sids of texts whose send we heard answered, by time (a day kept;
                    SIDS_KEEP_SECONDS): with Message Redaction, how a retry tells its own lost message
                    from another follow-up's (tasks/followup.py). Twilio sids only, never a number.
The id is derived from what triggered it (a CallSid or MessageSid and the service), so a retried
webhook or a duplicate trigger finds the same id and adds nothing.

Settling: the text of follow-up <id> is sent with StatusCallback `<base>/sms/status?f=<id>` (Twilio
signs that URL), so a status callback names the follow-up its message was created for. A follow-up
whose worker died between Twilio's answer and finishing it is settled by such a callback (settle);
a callback without `f` (the app's own TwiML replies, texts of older versions) settles nothing.

Key names live in router/store/keys.py; the scripts in router/store/scripts/ (followup_*.lua); the due
set and its kick flag are a LeasedQueue (router/store/queue.py), the one implementation deletions share.
Each step that touches several keys is one Lua script (one round trip, atomic), not a command or a
pipeline each: storing a follow-up, claiming it to send (lock, read, mark 'sending'), finishing it (and
releasing the lock), settling one caught mid-send. They did the same in 2 to 6 round trips, and each
round trip costs the caller ~0.1 ms of CPU in redis-py, where Redis runs a script in microseconds. The
scripts finish and settle name keys they derive from an id (hr:fu:<id>, its 'by' set): fine on one
Redis primary, as deployed (with Sentinel); Redis Cluster would need hash tags.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime
from typing import TYPE_CHECKING, Literal, NamedTuple, cast

import redis

from router.store import keys, scripts
from router.store.queue import LeasedQueue
from router.store.sealing import Sealer, Unreadable

if TYPE_CHECKING:
    from router.settings import Settings

FOLLOWUP_PREFIX = keys.FOLLOWUP_PREFIX   # + id: the follow-up's hash
DUE_KEY = keys.FOLLOWUPS_DUE
KICK_KEY = keys.FOLLOWUP_KICK
KICK_SECONDS = 5
KEEP_AFTER_DUE_SECONDS = 24 * 3600
# Defaults only: a deployment's come from Settings (FOLLOWUP_LOCK_SECONDS, FOLLOWUP_LEASE_SECONDS).
# One worker at a time per follow-up; shorter than the broker's visibility timeout, longer than a send.
LOCK_SECONDS = 20
# A dispatched follow-up not finished by then is dispatched again (its task was lost).
LEASE_SECONDS = 120


BOOKKEEPING = ("status", "attempt_at", "by")   # the plain fields of a follow-up: never a number or text


class Leased(NamedTuple):
    ids: list[str]   # due now, leased to the caller
    expired: int     # due ids whose follow-up had expired unsent: removed, for the caller to count


class Added(NamedTuple):
    new: bool    # False: this id is already pending (a duplicate trigger); nothing was stored
    kick: bool   # the caller should publish a dispatch: at_once, and none was asked for yet


def followup_id(secret: bytes, trigger: str, service_id: str) -> str:
    return hmac.new(secret, f"followup\0{trigger}\0{service_id}".encode(), hashlib.sha256).hexdigest()[:32]


SIDS_KEY = keys.FOLLOWUP_SIDS
SIDS_KEEP_SECONDS = 24 * 3600


class PendingFollowups:
    """secret: the state secret(s) (Settings.state_key_secrets(), newest first: the first files a
    follow-up under its number, a stop looks under each); key: the follow-up encryption key(s)
    (Settings.followup_keys(), newest first)."""

    @classmethod
    def for_deployment(cls, client: redis.Redis, settings: Settings) -> PendingFollowups:
        """The store as the web tier and the workers both use it: keys and timings from Settings."""
        return cls(client, settings.state_key_secrets(), settings.followup_keys(),
                   lock_seconds=settings.followup_lock_seconds, lease_seconds=settings.followup_lease_seconds)

    def __init__(self, client: redis.Redis, secret: bytes | tuple[bytes, ...],
                 key: bytes | tuple[bytes, ...], *, lock_seconds: int = LOCK_SECONDS,
                 lease_seconds: int = LEASE_SECONDS):
        self.client = client
        self.lock_seconds = lock_seconds     # one worker at a time per follow-up (< the broker's visibility)
        self.lease_seconds = lease_seconds   # a dispatched follow-up not finished by then is dispatched again
        self.secrets = (secret,) if isinstance(secret, bytes) else tuple(secret)
        self.secret = self.secrets[0]
        self.sealer = Sealer(key)
        # the due ids: leased by dispatchers, kicked by 'now' follow-ups (scripts/followup_add.lua sets the flag)
        self.queue = LeasedQueue(client, DUE_KEY, KICK_KEY, kick_seconds=KICK_SECONDS, item_prefix=FOLLOWUP_PREFIX)
        self._add = scripts.load(client, "followup_add")
        self._claim = scripts.load(client, "followup_claim")
        self._finish = scripts.load(client, "followup_finish")
        self._mark_sending = scripts.load(client, "followup_mark_sending")
        self._remember = scripts.load(client, "followup_sent_remember")

    def _key(self, fid: str) -> str:
        return keys.followup(fid)

    def add(self, fid: str, *, to: str, from_: str, body: str, callback: str, send_at: datetime,
            at_once: bool = False) -> Added:
        """Store a follow-up once (new=False if this id is already pending: a duplicate trigger).
        at_once ('now'): due at once whatever the clocks of web and workers say, and a dispatch is asked
        for unless one already is (kick=True: the caller publishes it)."""
        due = send_at.timestamp()
        ttl = max(int(due - time.time()), 0) + KEEP_AFTER_DUE_SECONDS
        # the kick flag is set in the same script as the ZADD: a dispatch that cleared it sees the id
        stored, kick = self._add(
            keys=[keys.followup_made(fid), self._key(fid), keys.followups_of_number(self.secret, to), DUE_KEY,
                  KICK_KEY],
            args=[ttl, self.sealer.seal(fid, {"to": to, "from": from_, "body": body, "callback": callback}),
                  0 if at_once else repr(due), KEEP_AFTER_DUE_SECONDS * 8,
                  "1" if at_once else "0", KICK_SECONDS, fid])
        return Added(bool(stored), bool(kick))

    def kick(self) -> bool:
        """Ask for a dispatch unless one is asked for already: True when the caller should publish it."""
        return self.queue.kick()

    def begin_dispatch(self) -> None:
        """A dispatch starts (or the one asked for could not be published): any 'now' follow-up added
        from now on asks for a dispatch of its own."""
        self.queue.unkick()

    def _opened(self, fid: str, data: dict[str, str]) -> dict[str, str]:
        """The stored hash with its sealed fields opened (to, from, body, callback). Only what this
        process's keys open is ever returned with them: a record without a sealed field (written into
        Redis by someone without the key, or by a version before sealing) or one no key opens (another
        key, or forged) comes back without them and with `problem` saying which (`unsealed` or
        `unreadable`), so the worker drops and counts it and never sends a text it cannot authenticate."""
        opened = {name: value for name, value in data.items() if name in BOOKKEEPING}
        if "sealed" not in data:
            opened["problem"] = "unsealed"
            return opened
        try:
            opened.update(self.sealer.open(fid, data["sealed"]))
        except Unreadable:
            opened["problem"] = "unreadable"
        return opened

    def get(self, fid: str) -> dict[str, str] | None:
        data = cast("dict[str, str]", self.client.hgetall(self._key(fid)))  # decode_responses (make_redis)
        return self._opened(fid, data) if data else None

    def lease_due(self, now: float | None = None, limit: int = 100) -> Leased:
        """Ids due now; each is leased (its due time moved on) so a lost task is dispatched again later.
        Ids whose follow-up expired unsent are dropped from the due set and counted in `expired`."""
        leased = self.queue.lease(limit, self.lease_seconds, time.time() if now is None else now)
        return Leased(leased.members, leased.expired)

    def unlock(self, fid: str) -> None:
        self.client.delete(self._lock_key(fid))

    @staticmethod
    def _lock_key(fid: str) -> str:
        return keys.followup_lock(fid)

    def claim(self, fid: str, attempt_at: float,
              mark_sending: bool = True) -> dict[str, str] | None | Literal[False]:
        """lock, get and (for a 'pending' one, when mark_sending) mark_sending, in one round trip.

        False: another worker holds it (lock taken). None: nothing pending (sent or cancelled; the lock
        is released). Otherwise the follow-up as it was *before* marking, locked by the caller: if its
        status was 'pending' (and mark_sending) it is now 'sending' at attempt_at; if it was 'sending'
        already (an earlier attempt died mid-send) it is untouched, for the caller to reconcile."""
        flat = self._claim(keys=[self._lock_key(fid), self._key(fid), DUE_KEY],
                           args=[self.lock_seconds, repr(attempt_at), "1" if mark_sending else "0", fid])
        if flat is None:
            return False
        if not flat:
            return None
        return self._opened(fid, dict(zip(flat[::2], flat[1::2])))

    def mark_sending(self, fid: str, attempt_at: float) -> bool:
        """Before a send: mark it, only if the follow-up still exists. False when a status callback
        settled it or a stop cancelled it meanwhile: it must not be sent (and a plain HSET would have
        brought back a key without its TTL)."""
        return bool(self._mark_sending(keys=[self._key(fid)], args=[repr(attempt_at)]))

    def finish(self, fid: str, *, unlock: bool = False) -> None:
        """Sent or cancelled: forget the number and the text; only the id's 'made' marker stays (TTL).
        With unlock, the worker's lock is released in the same round trip."""
        self._finish(keys=[DUE_KEY, self._lock_key(fid) if unlock else ""], args=[FOLLOWUP_PREFIX, fid, "0"])

    def settle(self, fid: str) -> bool:
        """Twilio reported on a message created for follow-up `fid` (its StatusCallback named it): that
        follow-up's text went out, so it must never be sent again. True if it was still pending (its
        worker died before hearing Twilio's answer, or has not finished yet)."""
        return bool(self._finish(keys=[DUE_KEY, ""], args=[FOLLOWUP_PREFIX, fid, "1"]))

    def remember_sent(self, sid: str) -> None:
        """A follow-up's text whose creation we know of (Twilio answered, or a retry adopted it)."""
        self._remember(keys=[SIDS_KEY], args=[sid, repr(time.time()), SIDS_KEEP_SECONDS])

    def sent_sids(self, since: float) -> set[str]:
        """Sids remembered since `since` (seconds since the epoch)."""
        return set(cast("list[str]", self.client.zrangebyscore(SIDS_KEY, repr(since), "+inf")))

    def cancel_for_number(self, to: str) -> int:
        """Cancel every follow-up pending for `to`, filed under any state secret still read (a follow-up
        booked before a rotation of STATE_HASH_SECRET is cancelled by a stop after it)."""
        cancelled = 0
        for secret in self.secrets:
            by_number = keys.followups_of_number(secret, to)
            ids = cast("set[str]", self.client.smembers(by_number))
            for fid in ids:
                self.finish(fid)
            if ids:  # only what was read: a follow-up booked meanwhile stays where the next stop finds it
                self.client.srem(by_number, *ids)
            cancelled += len(ids)
        return cancelled

    def count_pending(self) -> int:
        return self.queue.count()
