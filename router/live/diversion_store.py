"""Diversions kept in Redis, so every web worker answers a diverted line within a second or so.

`DIVERSIONS_KEY` is a hash: service -> that diversion, signed (router/live/signing.py) with its service,
target, end and when it was made. The hash expires with the last diversion; each entry also carries its
own end, so a diversion stops at its time even while another keeps the hash alive, and it is believed for
at most MAX_DIVERSION from when it was made, whatever end it names. What a diversion means for callers,
and which are allowed, is router/live/diversion_rules.py.
"""
from __future__ import annotations

import json
import logging
import os
import random
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

import redis

from router.live import signing as release_auth
from router.live.diversion_rules import MAX_DIVERSION, Diversion
from router.live.history import History
from router.live.redis_keys import DIVERSIONS_KEY

log = logging.getLogger("router.live.diversion_store")
SEEN_FILE = "diversions-seen.json"   # in the history folder: SeenDiversions


def divert(client: redis.Redis, service: str, to: str, until: datetime, who: str = "", *,
           keys: release_auth.Keyring | None = None) -> Diversion:
    """Send callers for `service` to `to` until `until`, on every worker within a second or so. Signed
    (raises release_auth.Unsigned without a key)."""
    diversion = Diversion(service, to, until.astimezone(timezone.utc), who,
                          datetime.now(timezone.utc))  # to the microsecond: it orders entries (SeenDiversions)

    def add(current: dict[str, Diversion]) -> bool:
        current[service] = diversion
        return True

    _change(client, release_auth.keyring(keys), add)
    return diversion


def undivert(client: redis.Redis, service: str, *, keys: release_auth.Keyring | None = None) -> bool:
    return _change(client, release_auth.keyring(keys), lambda current: current.pop(service, None) is not None)


CHANGE_TRIES = 50   # another `router divert` at the same moment makes one read again; fifty in a row is not normal


def _change(client: redis.Redis, keys: release_auth.Keyring,
            change: Callable[[dict[str, Diversion]], bool]) -> bool:
    """Read the diversions in force, let `change` edit them (False: nothing to write) and write the set
    back, as one atomic step: the hash is WATCHed while it is read and rewritten in MULTI/EXEC, so two
    operators at once never lose one's diversion, and an undivert racing a divert never writes an ended
    one back. A write that meets another is read again and retried. True if written."""
    for _ in range(CHANGE_TRIES):
        with client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(DIVERSIONS_KEY)
                current = diversions(pipe, keys)  # read on the watching connection (immediate mode)
                if not change(current):
                    pipe.unwatch()
                    return False
                entries: dict = {sid: release_auth.signed(keys, release_auth.DIVERSION, _diversion_record(d))
                           for sid, d in current.items()}  # signed first: without a key nothing is changed
                pipe.multi()
                pipe.delete(DIVERSIONS_KEY)
                if current:
                    pipe.hset(DIVERSIONS_KEY, mapping=entries)
                    last = max(d.until for d in current.values())
                    pipe.pexpireat(DIVERSIONS_KEY, int(last.timestamp() * 1000) + 1)
                pipe.execute()
                return True
            except redis.WatchError:
                time.sleep(random.uniform(0, 0.02))  # let the other change finish: not all retry in step
                continue
    raise redis.WatchError(f"the diversions changed {CHANGE_TRIES} times while this change was made: try again")


def _diversion_record(d: Diversion) -> dict:
    return {"service": d.service, "to": d.to, "until": d.until.isoformat(), "who": d.who,
            "at": (d.made_at or d.until).isoformat()}


def parse_diversions(raw: dict, now: datetime | None = None,
                     keys: release_auth.Keyring | None = None) -> tuple[dict[str, Diversion], int]:
    """The hash as Redis returns it -> (the diversions still in force, how many entries were refused).
    An entry is believed only when signed with `keys` for its own service, and only for MAX_DIVERSION
    from when it was made, whatever end it names: its length is capped when read, not only when made."""
    keys = release_auth.keyring(keys)
    now = now or datetime.now(timezone.utc)
    found, refused = {}, 0
    for sid, body in (raw or {}).items():
        sid = sid.decode() if isinstance(sid, bytes) else sid
        record = release_auth.opened(keys, release_auth.DIVERSION, body, release_auth.MAX_DIVERSION_BYTES)
        try:
            if record is None or record["service"] != sid:
                raise ValueError("not signed")
            made_at = datetime.fromisoformat(record["at"])
            diversion = Diversion(sid, str(record["to"]), datetime.fromisoformat(record["until"]),
                                  str(record.get("who", "")), made_at)
            if diversion.until.tzinfo is None or made_at.tzinfo is None:
                raise ValueError("naive time")
        except (ValueError, KeyError, TypeError):
            refused += 1
            continue
        if made_at > now + timedelta(minutes=5) or diversion.until - made_at > MAX_DIVERSION + timedelta(minutes=1):
            refused += 1
            continue
        if diversion.active(now):
            found[sid] = diversion
    return found, refused


def read_diversions(client: redis.Redis,
                    keys: release_auth.Keyring | None = None) -> tuple[dict[str, Diversion], int]:
    """(the diversions in force, how many entries in Redis were refused), read with a bound."""
    try:
        raw = release_auth.bounded_hgetall(client, DIVERSIONS_KEY, release_auth.MAX_DIVERSIONS,
                                           release_auth.MAX_DIVERSION_BYTES)
    except release_auth.TooLarge:
        return {}, 1
    return parse_diversions(raw, keys=keys)


def diversions(client: redis.Redis, keys: release_auth.Keyring | None = None) -> dict[str, Diversion]:
    """The diversions in force; entries not signed with `keys` are left out (and logged)."""
    found, refused = read_diversions(client, keys)
    if refused:
        log.error("%d diversion(s) in Redis are not signed with this instance's FLOWS_SIGNING_KEY (or last "
                  "longer than %d days): ignored", refused, MAX_DIVERSION.days)
    return found


class SeenDiversions:
    """What this instance has seen of the diversions, so that Redis cannot turn them back in time: an
    entry older than one already seen for its service (replaced since), or the entry of a diversion seen
    to end before its time (undivert), is refused if it is written back, e.g. by someone with access to
    Redis replaying a signed entry they copied. Kept in memory and, given the history, in a small file
    beside it (service ids and times only), so a worker started later refuses the same."""

    def __init__(self, history: History | None = None) -> None:
        self._history = history
        self._newest: dict[str, datetime] = {}   # service -> when the newest entry seen for it was made
        self._ended: dict[str, datetime] = {}    # service -> when the entry seen to end early was made
        self._in_force: set[str] = set()
        self._merge(self._read())

    def screen(self, found: dict[str, Diversion], complete: bool = True) -> tuple[dict[str, Diversion], int]:
        """(the diversions of `found` to believe, how many were written back): `found` as read now.
        `complete` is False when some entries could not be read or verified (refused: a key being
        rotated, a clock ahead, the hash too large): a diversion missing then may still be there, so no
        ending is learnt from that read (learning one would refuse the real diversion for good)."""
        kept, replayed, learnt = {}, 0, False
        for sid, diversion in found.items():
            made, ended = diversion.made_at or diversion.until, self._ended.get(sid)
            if made < self._newest.get(sid, made) or (ended is not None and made <= ended):
                replayed += 1
                continue
            kept[sid] = diversion
            learnt = learnt or self._newest.get(sid) != made
            self._newest[sid] = made
        if not complete:
            self._in_force |= set(kept)
            if learnt:
                self._save()
            return kept, replayed
        for sid in self._in_force - set(found):  # gone while in force: ended by `router undivert`
            self._ended[sid], learnt = self._newest[sid], True
        self._in_force = set(kept)
        if learnt:
            self._save()
        return kept, replayed

    def _read(self) -> dict:
        try:
            data = json.loads((self._history.home / SEEN_FILE).read_text()) if self._history else {}
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _merge(self, data: dict) -> None:
        for field, into in (("newest", self._newest), ("ended", self._ended)):
            found = data.get(field)
            for sid, when in (found.items() if isinstance(found, dict) else ()):
                try:
                    moment = datetime.fromisoformat(when)
                except (TypeError, ValueError):
                    continue
                if moment.tzinfo is not None and (sid not in into or moment > into[sid]):
                    into[sid] = moment

    def _save(self) -> None:
        """Merged with what the other workers here saw, under the history's lock, replaced whole."""
        if self._history is None:
            return
        try:
            with self._history.locked():
                self._merge(self._read())
                body = {field: {sid: moment.isoformat() for sid, moment in seen.items()}
                        for field, seen in (("newest", self._newest), ("ended", self._ended))}
                staged = self._history.home / f".{SEEN_FILE}.{os.getpid()}"
                staged.write_text(json.dumps(body))
                os.replace(staged, self._history.home / SEEN_FILE)
        except OSError as exc:  # remembered in memory all the same
            log.warning("could not record the diversions seen (%s)", type(exc).__name__)
