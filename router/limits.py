"""How much the helpline may send: follow-ups per number and per minute, replies per texter.

Why: a caller ID and a text's sender can be faked, so without limits anyone could make the helpline
text someone else's mobile again and again ("a service for abuse is texting you") or flood it with
menus. The limits (flows/config.yaml `limits:`, defaults and reasons there) are counted in Redis under
keyed hashes of the number, each with a TTL, and every refusal is counted in `helpline_limits_total`
and logged by the limit's name, never with the number.

- Follow-ups: the same service to the same number at most once in 24 hours (a second ask is told the
  text is already on its way); at most `followups_per_number_per_day` to one number; at most
  `followups_per_minute` for everyone together. Checked and counted in one Lua script, which also
  remembers (hr:fu-to:<hash>, value: the language only) that this number is to get a follow-up, so a
  later reply from that phone is answered discreetly (router/sms.py) for `discreet_days`.
- Replies: a texter's first `replies_per_sender` texts in a window get full answers, the next
  `advice_replies_per_sender` only the 999 advice, then nothing; STOP is always acted on. Past
  `replies_per_minute` for everyone together, only the 999 advice. The counts come with the text's
  arrival (router/state.py), in the same round trip.
"""
from __future__ import annotations

import enum
import json
import logging
import time
from datetime import datetime

import redis
from prometheus_client import Counter

from router import metrics
from router.model import Limits
from router.state import GLOBAL_WINDOW_SECONDS, hashed, recent_key

log = logging.getLogger("router.limits")
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
    ALREADY = "already"          # the same service is already on its way to this number (24 h)
    PER_NUMBER = "per_number"    # this number has had its follow-ups for the day
    GLOBAL = "global"            # too many follow-ups this minute, for everyone
    FAILED = "failed"            # could not be stored (Redis down) or the number cannot take texts

    def __bool__(self) -> bool:
        return self is Booking.KEPT


_REFUSED = {"already": (Booking.ALREADY, "followup_same_service"),
            "per_number": (Booking.PER_NUMBER, "followup_per_number"),
            "global": (Booking.GLOBAL, "followup_global")}

# KEYS: the id's 'made' marker (a retried webhook), same service + number, per number, everyone this
# minute, recent follow-up. ARGV: per-number max, per-minute max, a day, the minute key's TTL, the
# recent key's value and TTL.
_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'dup' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'already' end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[1]) then return 'per_number' end
if tonumber(redis.call('GET', KEYS[4]) or '0') >= tonumber(ARGV[2]) then return 'global' end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
redis.call('INCR', KEYS[3])
if redis.call('TTL', KEYS[3]) < 0 then redis.call('EXPIRE', KEYS[3], ARGV[3]) end
redis.call('INCR', KEYS[4])
if redis.call('TTL', KEYS[4]) < 0 then redis.call('EXPIRE', KEYS[4], ARGV[4]) end
return 'ok'
"""


class FollowupLimits:
    """The follow-up limits of one Redis, for the web tier (router/jobs.py)."""

    def __init__(self, client: redis.Redis, secret: bytes):
        self.client = client
        self.secret = secret
        self._reserve = client.register_script(_RESERVE)

    def _service_key(self, number: str, service_id: str) -> str:
        return hashed(self.secret, "lim-fu-svc", f"{number}\0{service_id}")

    def reserve(self, fid: str, number: str, service_id: str, limits: Limits, *, send_at: datetime,
                lang: str, now: float | None = None) -> Booking:
        """Take a place for follow-up `fid` (KEPT), or say which limit refuses it. A retried webhook
        (the id was stored already) is KEPT and counted once. Raises redis errors to the caller."""
        now = time.time() if now is None else now
        keys = [f"hr:fu-made:{fid}", self._service_key(number, service_id),
                hashed(self.secret, "lim-fu-num", number),
                f"hr:lim:fu:{int(now // GLOBAL_WINDOW_SECONDS)}", recent_key(self.secret, number)]
        remember = max(int(send_at.timestamp() - now), 0) + limits.discreet_days * DAY_SECONDS
        answer = self._reserve(keys=keys, args=[
            limits.followups_per_number_per_day, limits.followups_per_minute, DAY_SECONDS,
            2 * GLOBAL_WINDOW_SECONDS, json.dumps({"lang": lang}), remember])
        answer = answer.decode() if isinstance(answer, bytes) else str(answer)
        if answer in ("ok", "dup"):
            return Booking.KEPT
        booking, name = _REFUSED[answer]
        reached(name)
        return booking

    def release_all(self, number: str, service_ids) -> None:
        """Everything for this number was cancelled (a stop): a new ask for any service is a new text,
        not "already on its way". The count per number stays, so stop-and-ask-again is still capped."""
        keys = [self._service_key(number, sid) for sid in service_ids]
        if keys:
            self.client.delete(*keys)

    def release(self, number: str, service_id: str) -> None:
        """The place was taken but the follow-up could not be stored: free the same-service place, so
        the person is not told later that a text which never existed is on its way, and forget that
        this phone was texted lately (nothing was), so its next text gets the menu, not the discreet reply."""
        self.client.delete(self._service_key(number, service_id), recent_key(self.secret, number))


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
