"""Every Redis key the app writes or reads, named in one place: the schema web, workers and operators share.

Why one place: a key spelled in two modules is a rename waiting to break silently (a gauge that reads
nothing, a de-duplication that no longer matches). Nothing outside this module spells a key; code asks
for a key by what it holds.

Two prefixes, each kept for what already lives under it in deployed Redis:
- `hr:` the helpline's working state. A key that says something about a phone number or a sid holds a
  keyed hash of it, never the value itself: `hr:<kind>:<HMAC-SHA256(secret, kind + value)[:40]>`
  (`hashed`), so a Redis dump holds no phone number. Every `hr:` key has a TTL.
- `router:flows:` the signed releases and diversions operators publish (router/live).
Celery's broker keeps its own keys in the same Redis (`CELERY_QUEUE` is read for a gauge only).
"""
from __future__ import annotations

import hashlib
import hmac

PREFIX = "hr:"


def hashed(secret: bytes, kind: str, value: str) -> str:
    """`hr:<kind>:<keyed hash of value>`: the key of something about a number or a sid, without it."""
    digest = hmac.new(secret, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()[:40]
    return f"{PREFIX}{kind}:{digest}"


# ---------------------------------------------------------------- texts as they arrive (conversations.py)
def seen(secret: bytes, message_sid: str) -> str:
    """A MessageSid answered already (a retried webhook or a replay advances nothing)."""
    return hashed(secret, "seen", message_sid) if message_sid else f"{PREFIX}seen:-"


def conversation(secret: bytes, number: str) -> str:
    """Where a texter is in the menu, and their language."""
    return hashed(secret, "conv", number)


def sender_replies(secret: bytes, number: str) -> str:
    """Arrival times of one sender's texts (a sliding window for the reply limits)."""
    return hashed(secret, "lim-replies", number)


def urgent_replies(secret: bytes, number: str) -> str:
    """Times one sender's urgent texts were answered past the other limits (the last minute)."""
    return hashed(secret, "lim-urgent", number)


def replies_in_minute(minute: int) -> str:
    """Texts from everyone in one minute (epoch seconds // 60)."""
    return f"{PREFIX}lim:replies:{minute}"


# ---------------------------------------------------------------- follow-ups (limits.py, pending.py)
FOLLOWUPS_IN_MINUTE_PREFIX = f"{PREFIX}lim:fu:"   # + minute: follow-ups due in that minute, everyone's
FOLLOWUP_PREFIX = f"{PREFIX}fu:"                  # + id: the follow-up's hash (sealed fields)
FOLLOWUPS_DUE = f"{PREFIX}fu-due"                 # sorted set of ids by due time (leased)
FOLLOWUP_KICK = f"{PREFIX}fu-kick"                # a dispatch is asked for
FOLLOWUP_SIDS = f"{PREFIX}fu-sids"                # sids of follow-up texts whose send was answered


def followup(fid: str) -> str:
    return FOLLOWUP_PREFIX + fid


def followup_made(fid: str) -> str:
    """'1' once follow-up `fid` was stored: a duplicate trigger adds nothing."""
    return f"{PREFIX}fu-made:{fid}"


def followup_lock(fid: str) -> str:
    """One worker at a time on a follow-up."""
    return f"{PREFIX}fu-lock:{fid}"


def followups_of_number(secret: bytes, number: str) -> str:
    """The ids pending for one number, so a stop cancels them at once."""
    return hashed(secret, "fu-by", number)


def followup_same_service(secret: bytes, number: str, service_id: str) -> str:
    """This service was (or will be) texted to this number today."""
    return hashed(secret, "lim-fu-svc", f"{number}\0{service_id}")


def followups_per_number(secret: bytes, number: str) -> str:
    """How many follow-ups this number was booked today."""
    return hashed(secret, "lim-fu-num", number)


# ---------------------------------------------------------------- deletions from Twilio (deletions.py)
DELETIONS_DUE = f"{PREFIX}del-due"     # sorted set "m:<sid>" / "c:<sid>" by when next due (leased)
DELETIONS_INFO = f"{PREFIX}del-info"   # hash member -> "<final_at>|<attempts>"
DELETION_KICK = f"{PREFIX}del-kick"    # a drain is asked for
DELETION_NEXT = f"{PREFIX}del-next"    # a drain is scheduled to come back


# ---------------------------------------------------------------- calls (router/web/replay.py)
def call_ended(secret: bytes, call_sid: str) -> str:
    """A call whose status callback said it ended: its key presses change nothing any more."""
    return hashed(secret, "call-ended", call_sid)


# ---------------------------------------------------------------- the workers' shared bookkeeping
STATS = f"{PREFIX}stats"                # hash of the workers' counters (counters.py)
HEARTBEAT = f"{PREFIX}heartbeat"        # when a worker last ran beat's heartbeat (tasks/health.py)
OWN_NUMBERS = f"{PREFIX}own-numbers"    # the helpline's own numbers, as Twilio shows them (own_numbers.py)
CELERY_QUEUE = "celery"                 # Celery's default queue (a list): its length is a gauge

# ---------------------------------------------------------------- live flows (router/live)
FLOWS_APPLIED = "router:flows:applied"          # the release every instance follows (signed)
FLOWS_DIVERSIONS = "router:flows:diversions"    # service -> where to and until when (signed)


def flows_release(number: int | str) -> str:
    """A release's files, for instances that have not got them yet (number "*" for a pattern)."""
    return f"router:flows:release:{number}"


def flows_serving(worker: str) -> str:
    """Which release one web worker serves (worker "*" for a SCAN pattern)."""
    return f"router:flows:serving:{worker}"
