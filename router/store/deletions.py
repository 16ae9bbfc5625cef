"""Deletions from Twilio waiting to be done: queued in Redis by the web tier, drained in batches by workers.

Why: a Celery publish per deletion cost the web tier ~0.65-1 ms of CPU (kombu builds a redis-py pipeline
per publish, then Celery assembles the message), the largest cost of answering a text and of every final
status callback (bench/queue_choice.py: 0.35 ms against 0.06 ms here). Here a deletion is one EVALSHA
that adds the sid to a sorted set (an inbound text's is queued inside its arrival script, no round trip of
its own: router/store/conversations.py), and a drain task is
published only when none has been asked for yet (the "kick" flag), so a burst of texts costs a handful of
publishes, not one each. Workers lease due items in batches (as hr:fu-due is leased, router/store/pending.py):
a worker killed mid-drain loses nothing, its items come due again when their lease runs out. A retry
moves an item's due time on, with a count of attempts, so backoff grows and gives up like the per-sid
tasks did (the history sweep takes over after that).

Keys (each with a TTL; they hold Twilio sids and times only, never a phone number or a text):
- hr:del-due   sorted set: "m:<MessageSid>" / "c:<CallSid>" by when it is next due (Redis' clock): first
               FIRST_DELETE_AFTER_SECONDS after it is queued (Twilio asks for at least a minute after a
               message is sent or received: https://www.twilio.com/docs/api/errors/20009); a leased
               item is moved LEASE_SECONDS on; KEEP_SECONDS, renewed by every write
- hr:del-info  hash: the same member -> "<final_at>|<attempts>" (final_at: when the message or call became
               final, for the deletion lag; empty when not known); KEEP_SECONDS, renewed by every write
- hr:del-kick  "1" from the moment a drain is asked for until it starts: adds meanwhile publish nothing;
               KICK_SECONDS, so a lost kick only delays (beat's drain, every DRAIN_EVERY_SECONDS, and the
               next add after it lapses both kick again)
- hr:del-next  a token while a drain is scheduled to come back for items not yet due (retries, leases);
               the countdown plus a margin
Key names live in router/store/keys.py, the scripts in router/store/scripts/ (deletion*.lua); the due set
and its kick flag are a LeasedQueue (router/store/queue.py), the one implementation follow-ups share.
Race-free by ordering: add = ZADD, then SET kick NX, in one script; a drain first deletes the kick flag,
then leases. An add that found the flag set had its item in the set before the drain leased.
"""
from __future__ import annotations

import logging
import re
import secrets
from typing import TYPE_CHECKING, NamedTuple

import redis

from router.store import keys, scripts
from router.store.queue import LeasedQueue

if TYPE_CHECKING:
    from router.settings import Settings

log = logging.getLogger("router.store.deletions")

DUE_KEY = keys.DELETIONS_DUE
INFO_KEY = keys.DELETIONS_INFO
KICK_KEY = keys.DELETION_KICK
NEXT_KEY = keys.DELETION_NEXT
# Twilio may take up to 14 days to finalise a record (errors/20009): retries span that (tasks/retry.py),
# and the sweep looks back 15 days (tasks/history.py)
KEEP_SECONDS = 16 * 24 * 3600
# Defaults only: a deployment's come from Settings (DELETION_WAIT_SECONDS, DELETION_LEASE_SECONDS).
FIRST_DELETE_AFTER_SECONDS = 60.0
KICK_SECONDS = 5
# A drain that has not finished a batch by then is presumed dead: its items come due again (a batch is
# at most BATCH deletions over THREADS connections, each bounded by the REST client's 10 s timeout).
LEASE_SECONDS = 60.0
NEXT_MARGIN_SECONDS = 30.0
KINDS = {"message": "m", "call": "c"}
_KIND_OF = {letter: kind for kind, letter in KINDS.items()}
_SID = {"message": re.compile(r"(SM|MM)[0-9a-f]{32}", re.I), "call": re.compile(r"CA[0-9a-f]{32}", re.I)}

class Item(NamedTuple):
    kind: str                 # "message" or "call"
    sid: str
    final_at: float | None    # when it became final (web's clock), for the deletion lag
    attempts: int             # deletions tried and to be retried so far

    @property
    def member(self) -> str:
        return f"{KINDS[self.kind]}:{self.sid}"


def valid_sid(kind: str, sid: str) -> bool:
    pattern = _SID.get(kind)
    return bool(pattern and isinstance(sid, str) and pattern.fullmatch(sid))


def _item(member: str, info: str) -> Item | None:
    letter, _, sid = member.partition(":")
    kind = _KIND_OF.get(letter)
    if kind is None:
        return None
    final_at, _, attempts = info.partition("|")
    try:
        return Item(kind, sid, float(final_at) if final_at else None, int(attempts or 0))
    except ValueError:
        return Item(kind, sid, None, 0)


class PendingDeletions:
    @classmethod
    def for_deployment(cls, client: redis.Redis, settings: Settings) -> PendingDeletions:
        """The queue as the web tier and the workers both use it: timings from Settings."""
        return cls(client, first_delete_after_seconds=settings.deletion_wait_seconds,
                   lease_seconds=settings.deletion_lease_seconds)

    def __init__(self, client: redis.Redis, *, first_delete_after_seconds: float | None = None,
                 lease_seconds: float | None = None):
        self.client = client
        # when a queued deletion is first due (Twilio asks for a minute), and how long a drain may hold one
        self.first_delete_after_seconds = (FIRST_DELETE_AFTER_SECONDS if first_delete_after_seconds is None
                                           else first_delete_after_seconds)
        self.lease_seconds = LEASE_SECONDS if lease_seconds is None else lease_seconds
        self._add = scripts.load(client, "deletion_add")
        # leased by drains, kicked by adds (scripts/deletion_add.lua and arrive.lua set the flag)
        self.queue = LeasedQueue(client, DUE_KEY, KICK_KEY, kick_seconds=KICK_SECONDS, info_key=INFO_KEY,
                                 keep_seconds=KEEP_SECONDS)
        self._done = scripts.load(client, "deletions_done")
        self._retry = scripts.load(client, "deletion_retry")
        self._begin = scripts.load(client, "deletions_drain_begin")
        self._schedule = scripts.load(client, "deletions_next_schedule")
        self._release = scripts.load(client, "deletions_next_release")

    def add(self, kind: str, sid: str, final_at: float | None = None, delay: float | None = None) -> bool:
        """Queue the deletion of a message or call record, due `delay` seconds from now (default: the
        minute Twilio asks for, FIRST_DELETE_AFTER_SECONDS); one round trip. True when the caller should
        publish a drain: no drain had been asked for. An item already queued stays as it is. ValueError
        for anything but a Twilio sid of that kind: junk from a webhook is never queued."""
        if not valid_sid(kind, sid):
            raise ValueError("not a Twilio sid of that kind")
        stamp = "" if final_at is None else f"{final_at:.6f}"
        member = f"{KINDS[kind]}:{sid}"
        wait = self.first_delete_after_seconds if delay is None else delay
        return bool(self._add(keys=[DUE_KEY, INFO_KEY, KICK_KEY],
                              args=[member, stamp, KEEP_SECONDS, KICK_SECONDS, f"{max(wait, 0.0):.6f}"]))

    def begin_drain(self, token: str | None = None) -> None:
        """A drain starts: any add from now on asks for another. With the token it was scheduled with,
        it also frees the way for the next come-back to be scheduled."""
        self._begin(keys=[KICK_KEY, NEXT_KEY], args=[token or ""])

    def kick(self) -> bool:
        """Ask for a drain unless one is asked for already: True when the caller should publish it."""
        return self.queue.kick()

    def unkick(self) -> None:
        """The drain asked for could not be published: let the next add ask again."""
        self.queue.unkick()

    def lease(self, limit: int, now: float | None = None) -> list[Item]:
        """Up to `limit` items due by `now` (Redis' clock if None), each moved LEASE_SECONDS on: finish
        them (done / retry_later) before then, or they come due again for another drain."""
        leased = self.queue.lease(limit, self.lease_seconds, now)
        items = []
        for member, info in zip(leased.members, leased.infos):
            item = _item(member, info)
            if item is None:  # not ours: drop it rather than lease it forever
                self._done(keys=[DUE_KEY, INFO_KEY], args=[member])
            else:
                items.append(item)
        return items

    def done(self, *items: Item) -> None:
        """Deleted (or already gone, or given up on): forget them."""
        if items:
            self._done(keys=[DUE_KEY, INFO_KEY], args=[item.member for item in items])

    def retry_later(self, item: Item, delay: float) -> bool:
        """Due again in `delay` seconds, one attempt more. False if it was finished meanwhile."""
        stamp = "" if item.final_at is None else f"{item.final_at:.6f}"
        return bool(self._retry(keys=[DUE_KEY, INFO_KEY],
                                args=[item.member, f"{delay:.6f}", f"{stamp}|{item.attempts + 1}", KEEP_SECONDS]))

    def schedule_next(self, cap_seconds: float) -> tuple[float, str] | None:
        """If anything is still queued and no drain is scheduled to come back for it: (seconds until the
        earliest is due, at most cap_seconds; the token the come-back drain must carry)."""
        token = secrets.token_hex(8)
        delay = self._schedule(keys=[DUE_KEY, NEXT_KEY], args=[cap_seconds, NEXT_MARGIN_SECONDS, token])
        return (float(delay), token) if delay else None

    def release_next(self, token: str) -> None:
        """The come-back drain scheduled with this token could not be published."""
        self._release(keys=[NEXT_KEY], args=[token])

    def count(self) -> int:
        return self.queue.count()
