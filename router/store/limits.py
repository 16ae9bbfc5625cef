"""How much the helpline may send: follow-ups per number and per minute, replies per texter.

Why: a caller ID and a text's sender can be faked, so without limits anyone could make the helpline
text someone else's mobile again and again ("a service for abuse is texting you") or flood it with
menus. The limits (flows/config.yaml `limits:`, defaults and reasons there) are counted in Redis under
keyed hashes of the number, each with a TTL, and every refusal is counted in `helpline_limits_total`
and logged by the limit's name, never with the number.

- Follow-ups: the same service to the same number at most once in 24 hours (a second ask is answered
  as the first was, and nothing more is sent: issue 18); at most `followups_per_number_per_day` to one
  number; at most `followups_per_minute` for everyone together, counted by the minute each is *sent*.
  Past that cap a follow-up is not refused but delayed to the next minute with room (up to
  MAX_GLOBAL_DELAY_MINUTES, then sent over the cap), counted and alerted on: otherwise a crowd of faked
  caller IDs could use up the cap and a real caller would be refused (issue 18). Checked and counted in
  one Lua script.
- Replies: a texter's first `replies_per_sender` texts in a window get full answers, the next
  `advice_replies_per_sender` only the 999 advice, then nothing; STOP is always acted on. Past
  `replies_per_minute` for everyone together, only the 999 advice. The counts come with the text's
  arrival (router/store/conversations.py), in the same round trip.
"""
from __future__ import annotations

import enum
import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

import redis
from prometheus_client import Counter

from router import metrics
from router.definition.model import Limits
from router.store import keys, scripts
from router.store.conversations import GLOBAL_WINDOW_SECONDS

log = logging.getLogger("router.store.limits")
DAY_SECONDS = 24 * 3600

LIMITS = Counter("helpline_limits", "Times a limit on follow-ups or replies was reached (issue 12)",
                 ["limit"], registry=metrics.REGISTRY)
LIMIT_NAMES = ("followup_same_service", "followup_per_number", "followup_global",
               "reply_sender_burst", "reply_sender_silenced", "reply_global")


for _name in LIMIT_NAMES:  # every limit shows in /metrics from the start, at 0
    LIMITS.labels(_name)


def reached(name: str, first: bool = True) -> None:
    """Count a limit by its name alone (never the number or the text); log it when it is first reached
    in its window (`first`), so a flood cannot flood the logs too."""
    LIMITS.labels(name).inc()
    if first:
        log.warning("limit reached: %s", name)


class Booking(enum.Enum):
    """What became of a follow-up the person said yes to. Only KEPT is true, so `if booked:` reads well."""

    KEPT = "kept"
    ALREADY = "already"          # the same service went or goes to this number (24 h): answered as KEPT
    PER_NUMBER = "per_number"    # this number has had its follow-ups for the day
    FAILED = "failed"            # could not be stored (Redis down) or the number cannot take texts

    def __bool__(self) -> bool:
        return self is Booking.KEPT


_REFUSED = {"already": (Booking.ALREADY, "followup_same_service"),
            "per_number": (Booking.PER_NUMBER, "followup_per_number")}

# How far past the global cap follow-ups are spread, a minute at a time. 60 a minute (config.yaml) for an
# hour is 3,600 follow-ups: far beyond any real hour of a national helpline. A flood bigger than that is
# an attack; its follow-ups go out over the cap rather than pushing real ones back further (the per-number
# limit still keeps any one phone to a few), and the alert HelplineFollowupsDelayed has fired long before.
MAX_GLOBAL_DELAY_MINUTES = 60

# Checked and counted in one script: scripts/followup_reserve.lua.


class Reservation(NamedTuple):
    """A place for a follow-up: `booking` (KEPT or why not) and how many minutes past the time asked
    for it must wait because everyone's cap for that minute was reached (0 almost always)."""

    booking: Booking
    delay_minutes: int = 0

    def __bool__(self) -> bool:
        return bool(self.booking)


class FollowupLimits:
    """The follow-up limits of one Redis, for the web tier (router/web/jobs.py)."""

    def __init__(self, client: redis.Redis, secret: bytes):
        self.client = client
        self.secret = secret
        self._reserve = scripts.load(client, "followup_reserve")

    def _service_key(self, number: str, service_id: str) -> str:
        return keys.followup_same_service(self.secret, number, service_id)

    def reserve(self, fid: str, number: str, service_id: str, limits: Limits, *, send_at: datetime,
                now: float | None = None) -> Reservation:
        """Take a place for follow-up `fid` (KEPT, perhaps a few minutes later than asked), or say which
        limit refuses it. A retried webhook (the id was stored already) is KEPT and counted once. Raises
        redis errors to the caller."""
        now = time.time() if now is None else now
        script_keys = [keys.followup_made(fid), self._service_key(number, service_id), keys.followups_per_number(self.secret, number)]
        due_minute = int(max(send_at.timestamp(), now) // GLOBAL_WINDOW_SECONDS)
        answer, late = self._reserve(keys=script_keys, args=[
            limits.followups_per_number_per_day, limits.followups_per_minute, DAY_SECONDS, keys.FOLLOWUPS_IN_MINUTE_PREFIX,
            due_minute, MAX_GLOBAL_DELAY_MINUTES, int(now)])
        answer = answer.decode() if isinstance(answer, bytes) else str(answer)
        if answer in ("ok", "dup"):
            if int(late):
                reached("followup_global", first=int(late) == 1)
            return Reservation(Booking.KEPT, int(late))
        booking, name = _REFUSED[answer]
        reached(name)
        return Reservation(booking)

    def release_all(self, number: str, service_ids: Iterable[str]) -> None:
        """Everything for this number was cancelled (a stop, key 8): a new ask for any service is a new
        text. The count per number stays, so stop-and-ask-again is still capped."""
        places = [self._service_key(number, sid) for sid in service_ids]
        if places:
            self.client.delete(*places)

    def release(self, number: str, service_id: str) -> None:
        """The place was taken but the follow-up could not be stored: free the same-service place, so a
        new ask books a text rather than silently sending none."""
        self.client.delete(self._service_key(number, service_id))


class Reply(enum.Enum):
    FULL = "full"        # the answer the engine gives
    ADVICE = "advice"    # only the 999 advice
    SILENT = "silent"    # no reply at all (STOP is still acted on)


def reply_level(limits: Limits, sender_count: int, global_count: int) -> Reply:
    """How to answer a text, given how many this sender (in the window) and everyone (this minute) have
    sent, this one included. Counts of 0 (a retried webhook, or Redis down) are never limited."""
    ceiling = limits.replies_per_sender + limits.advice_replies_per_sender
    if sender_count > ceiling:
        reached("reply_sender_silenced", first=sender_count == ceiling + 1)
        return Reply.SILENT
    if sender_count > limits.replies_per_sender:
        reached("reply_sender_burst", first=sender_count == limits.replies_per_sender + 1)
        return Reply.ADVICE
    if global_count > limits.replies_per_minute:
        reached("reply_global", first=global_count == limits.replies_per_minute + 1)
        return Reply.ADVICE
    return Reply.FULL
