"""One leased queue in Redis: the one implementation behind follow-ups due (pending.py) and deletions
from Twilio (deletions.py), the two kinds of work workers take from Redis rather than from Celery.

Why not Celery tasks for them (issue 22 measured it, docs/performance.md "One queue"): a follow-up's
due time would be an ETA task, which a Redis broker redelivers after the visibility timeout; and a
Celery publish per deletion costs the web tier ~0.35 ms of CPU, about a bare Flask request's whole cost,
where queueing one here costs ~0.06 ms, or ~0.01 ms inside a text's arrival script.

A queue is a sorted set of members by when each is next due, and a kick flag:
- whoever adds work sets the kick flag (SET NX, with a short TTL) in the script that adds it, and
  publishes one worker task only when the flag was not set yet, so a burst of adds costs a handful of
  publishes; a worker clears the flag as it starts, then leases. By that order no add is missed: an add
  that found the flag set had its member in the set before the worker leased.
- a worker leases due members (scripts/queue_lease.lua): each is moved on by the lease, so a worker
  that dies mid-way loses nothing; it finishes each (removes it) or puts it back later itself.
"""
from __future__ import annotations

from typing import NamedTuple

import redis

from router.store import scripts


class Leased(NamedTuple):
    members: list[str]   # due now, leased to the caller
    infos: list[str]     # each member's info ('' without an info hash)
    expired: int         # members whose item was gone: removed, for the caller to count


class LeasedQueue:
    """due_key: the sorted set. kick_key, kick_seconds: the flag. info_key: a hash of each member's
    info (or None). item_prefix: members are ids of items at item_prefix + member that must still exist
    to be leased (or None). keep_seconds: the TTL a lease renews (or None: the adds' TTL stands)."""

    def __init__(self, client: redis.Redis, due_key: str, kick_key: str, *, kick_seconds: int,
                 info_key: str | None = None, item_prefix: str | None = None, keep_seconds: int | None = None):
        self.client = client
        self.due_key, self.kick_key, self.kick_seconds = due_key, kick_key, kick_seconds
        self.info_key, self.item_prefix, self.keep_seconds = info_key, item_prefix, keep_seconds
        self._lease = scripts.load(client, "queue_lease")

    def kick(self) -> bool:
        """Ask for a worker unless one is asked for already: True when the caller should publish it."""
        return bool(self.client.set(self.kick_key, "1", nx=True, ex=self.kick_seconds))

    def unkick(self) -> None:
        """A worker starts, or the one asked for could not be published: the next add asks again."""
        self.client.delete(self.kick_key)

    def lease(self, limit: int, lease_seconds: float, now: float | None = None) -> Leased:
        """Up to `limit` members due by `now` (None: Redis' clock), each moved lease_seconds on."""
        members, infos, expired = self._lease(
            keys=[self.due_key, self.info_key or ""],
            args=["" if now is None else f"{now:.6f}", limit, f"{lease_seconds:.6f}", self.item_prefix or "",
                  "" if self.keep_seconds is None else self.keep_seconds])
        return Leased(list(members), list(infos), int(expired))

    def count(self) -> int:
        return int(self.client.zcard(self.due_key))
