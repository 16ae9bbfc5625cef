"""Send a follow-up text exactly once, when it is due, and then forget the number.

Exactly once, even when a worker is killed mid-send: the follow-up is marked 'sending' before the
REST call; a later attempt that finds 'sending' asks Twilio whether a message to that number was
created since, and adopts it instead of sending again. Claiming it (lock, read, mark 'sending') and
finishing it (forget it, release the lock) are one Redis round trip each (tasks/pending.py).
"""
from __future__ import annotations

import logging
import time

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException

from tasks import app, settings
from tasks import metrics
from tasks.pending import PendingFollowups
from tasks.retry import backoff_seconds
from tasks.twilio_api import NotConfigured, is_configured, is_retryable, make_client
from router.state import make_redis

log = logging.getLogger("tasks.followup")
MAX_SEND_RETRIES = 12


_store: PendingFollowups | None = None


def pending_store() -> PendingFollowups:
    """One store (and Redis connection pool) per worker process: a new connection costs ~5 ms."""
    global _store
    if _store is None:
        _store = PendingFollowups(make_redis(settings.redis_url, timeout=5), settings.state_key_secret())
    return _store


DISPATCH_BATCH = 100


@app.task(name="tasks.followup.dispatch_due", acks_late=True)
def dispatch_due() -> int:
    """Queue every follow-up that is due (and re-queue any whose task was lost). Run by beat, and kicked
    by the web tier for 'now' follow-ups: it clears the kick flag first, so a 'now' follow-up added
    after that asks for another dispatch, and one added before is already in hr:fu-due to be leased."""
    store = pending_store()
    store.begin_dispatch()
    dispatched = 0
    while True:
        ids = store.lease_due(limit=DISPATCH_BATCH)
        for fid in ids:
            send_followup.delay(fid)
        dispatched += len(ids)
        if len(ids) < DISPATCH_BATCH:
            return dispatched


def _already_sent(client, data: dict[str, str]) -> str | None:
    """After a crash mid-send: the sid of a message Twilio created for this follow-up, if any."""
    attempt_at = float(data.get("attempt_at") or 0)
    # No DateSent filter: a message still queued at Twilio has no date_sent yet. Newest come first.
    for message in client.messages.list(to=data["to"], limit=50):
        created = message.date_created.timestamp() if message.date_created else 0
        if message.direction and message.direction.startswith("outbound") and created >= attempt_at - 2:
            return message.sid
    return None


@app.task(name="tasks.followup.send_followup", bind=True, acks_late=True, max_retries=MAX_SEND_RETRIES)
def send_followup(self, fid: str) -> str | None:
    store = pending_store()
    client = make_client(settings) if is_configured(settings) else None
    # lock + read + mark 'sending' (if it is 'pending' and we can send) in one round trip
    data = store.claim(fid, time.time(), mark_sending=client is not None)
    if data is False:
        return None  # another worker has it; if that worker dies the lease re-dispatches it
    if data is None:
        return None  # sent or cancelled already (claim released the lock)
    if client is None:  # no account: refused, and forgotten
        try:
            make_client(settings)  # logs why
        except NotConfigured:
            pass
        metrics.FOLLOWUPS.labels("refused").inc()
        store.finish(fid, unlock=True)
        return None
    locked = True
    try:
        if data.get("status") == "sending":  # an earlier attempt died mid-send: did its text go out?
            sid = _already_sent(client, data)
            if sid:
                log.info("follow-up %s was already sent before a restart; not sending again", fid[:8])
                store.finish(fid, sid, unlock=True)
                locked = False
                metrics.FOLLOWUPS.labels("sent").inc()
                return sid
            store.mark_sending(fid, time.time())
        try:
            message = client.messages.create(
                to=data["to"], from_=data["from"], body=data["body"], status_callback=data["callback"],
                content_retention="discard", address_retention="obfuscate")
        except TwilioRestException as exc:
            if is_retryable(exc):
                store.unlock(fid)
                locked = False
                metrics.FOLLOWUPS.labels("retried").inc()
                raise self.retry(countdown=backoff_seconds(self.request.retries), exc=None)
            log.error("follow-up %s refused by Twilio: error %s", fid[:8], exc.code)
            metrics.FOLLOWUPS.labels("failed").inc()
            store.finish(fid, unlock=True)
            locked = False
            return None
        except (TwilioException, requests.RequestException):
            store.unlock(fid)  # no answer: next attempt asks Twilio whether it was created
            locked = False
            metrics.FOLLOWUPS.labels("retried").inc()
            raise self.retry(countdown=backoff_seconds(self.request.retries), exc=None)
        store.finish(fid, message.sid, unlock=True)
        locked = False
        metrics.FOLLOWUPS.labels("sent").inc()
        return message.sid
    finally:
        if locked:
            store.unlock(fid)
