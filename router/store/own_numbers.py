"""The helpline's own numbers, as Twilio shows them to us: the `To` of every signed call and text that
comes in. The history sweep deletes records to or from these only (tasks/history.py), so that it works
without HELPLINE_NUMBERS being set, and never touches the rest of the account.

Why it is safe to keep: these are the helpline's numbers (a signed request's `To` on /voice and /sms),
never a caller's. Kept in one Redis set (hr:own-numbers) with a TTL as long as the sweep looks back, and
written at most once an hour per number per process, so it costs a webhook nothing measurable.
"""
from __future__ import annotations

import logging
import re
import time
from typing import cast

import redis

from router.store import keys

KEY = keys.OWN_NUMBERS
KEEP_SECONDS = 16 * 24 * 3600     # as long as the sweep looks back (15 days), and a day
REFRESH_SECONDS = 3600.0
E164 = re.compile(r"\+[1-9]\d{6,14}")
log = logging.getLogger("router.store.own_numbers")


class OwnNumbers:
    def __init__(self, client: redis.Redis):
        self.client = client
        self._noted: dict[str, float] = {}   # number -> when this process last wrote it

    def note(self, number: str | None) -> None:
        """Remember `number` as one of ours (best effort: never raises)."""
        if not number or not E164.fullmatch(number):
            return
        now = time.monotonic()
        if now - self._noted.get(number, -REFRESH_SECONDS) < REFRESH_SECONDS:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.sadd(KEY, number)
            pipe.expire(KEY, KEEP_SECONDS)
            pipe.execute()
            self._noted[number] = now
        except (redis.RedisError, OSError):
            log.debug("own number not noted: redis unavailable")

    def known(self) -> set[str]:
        return set(cast("set[str]", self.client.smembers(KEY)))  # decode_responses clients (make_redis)
