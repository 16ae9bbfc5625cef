"""Diversions kept in Redis, so every web worker answers a diverted line within a second or so.

`DIVERSIONS_KEY` is a hash: service -> that diversion, signed (router/live/signing.py) with its service,
target, end and when it was made. The hash expires with the last diversion; each entry also carries its
own end, so a diversion stops at its time even while another keeps the hash alive, and it is believed for
at most MAX_DIVERSION from when it was made, whatever end it names. What a diversion means for callers,
and which are allowed, is router/live/diversion_rules.py.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import redis

from router.live import signing as release_auth
from router.live.diversion_rules import MAX_DIVERSION, Diversion
from router.live.redis_keys import DIVERSIONS_KEY

log = logging.getLogger("router.live.diversion_store")


def divert(client: redis.Redis, service: str, to: str, until: datetime, who: str = "", *,
           keys: release_auth.Keyring | None = None) -> Diversion:
    """Send callers for `service` to `to` until `until`, on every worker within a second or so. Signed
    (raises release_auth.Unsigned without a key)."""
    keys = release_auth.keyring(keys)
    diversion = Diversion(service, to, until.astimezone(timezone.utc), who,
                          datetime.now(timezone.utc).replace(microsecond=0))
    current = diversions(client, keys)
    current[service] = diversion
    _write_diversions(client, current, keys)
    return diversion


def undivert(client: redis.Redis, service: str, *, keys: release_auth.Keyring | None = None) -> bool:
    keys = release_auth.keyring(keys)
    current = diversions(client, keys)
    if current.pop(service, None) is None:
        return False
    _write_diversions(client, current, keys)
    return True


def _diversion_record(d: Diversion) -> dict:
    return {"service": d.service, "to": d.to, "until": d.until.isoformat(), "who": d.who,
            "at": (d.made_at or d.until).isoformat()}


def _write_diversions(client: redis.Redis, current: dict[str, Diversion], keys: release_auth.Keyring) -> None:
    entries = {sid: release_auth.signed(keys, release_auth.DIVERSION, _diversion_record(d))
               for sid, d in current.items()}  # signed first: without a key nothing is changed
    pipe = client.pipeline(transaction=True)
    pipe.delete(DIVERSIONS_KEY)
    if current:
        pipe.hset(DIVERSIONS_KEY, mapping=entries)
        last = max(d.until for d in current.values())
        pipe.pexpireat(DIVERSIONS_KEY, int(last.timestamp() * 1000) + 1)
    pipe.execute()


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
