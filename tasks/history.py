"""Leave nothing at Twilio: delete every message and call record once it is final, and sweep for any
whose status callback was lost.

Deletions wait in Redis (tasks/deletions.py); drain_deletions deletes them a batch at a time over a few
threads. Twilio answers error 20009 while a message is still being processed: that, 429, 5xx and no
answer are retried with capped exponential backoff and jitter until Twilio confirms; 'not found' means
already gone; after MAX_DELETE_RETRIES the sweep takes over.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import redis
import requests
from kombu.exceptions import KombuError
from twilio.base.exceptions import TwilioException, TwilioRestException

from router import logs
from tasks import VISIBILITY_TIMEOUT_SECONDS, app, settings
from tasks import metrics
from tasks.deletions import Item, PendingDeletions
from tasks.process_local import once, worker_redis
from tasks.retry import CAP_SECONDS, backoff_seconds
from tasks.twilio_api import (NotConfigured, is_configured, is_gone, is_retryable, make_client,
                               make_thread_client)

log = logging.getLogger("tasks.history")
MAX_DELETE_RETRIES = 120  # about half an hour at the 15 s cap; the sweep takes over after that
FINAL_MESSAGE = frozenset({"delivered", "undelivered", "failed", "received", "read", "canceled"})
FINAL_CALL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
SWEEP_LOOKBACK = timedelta(days=3)
SWEEP_MIN_AGE = timedelta(minutes=5)
BATCH = 32      # leased at once: at most 4 rounds of THREADS requests, well inside the lease
THREADS = 8     # Twilio takes 100+ ms a request; a few at once keep one worker process busy
# A drain hands over to a fresh task after this long, so it neither outlives the broker's visibility
# timeout (which would hand a copy to another worker) nor keeps a worker process from other tasks.
DRAIN_BUDGET_SECONDS = min(10.0, VISIBILITY_TIMEOUT_SECONDS / 2)

DELETED, GONE, RETRY, REFUSED = "deleted", "gone", "retry", "refused"

def deletion_queue() -> PendingDeletions:
    """The worker process's queue, on its one Redis client."""
    return once("deletion-queue", lambda: PendingDeletions(worker_redis()))


def _pool() -> ThreadPoolExecutor:
    return once("delete-threads", lambda: ThreadPoolExecutor(THREADS, thread_name_prefix="delete"))


def _delete_one(item: Item) -> str:
    """One DELETE at Twilio, in a pool thread with a client of its own; logs under the sid's correlation
    id, as the webhook that asked for it did."""
    logs.CORRELATION.set(logs.correlation_for(item.sid))
    try:
        client = make_thread_client(settings)
        (client.messages(item.sid) if item.kind == "message" else client.calls(item.sid)).delete()
    except TwilioRestException as exc:
        if is_gone(exc):
            return GONE
        if is_retryable(exc):
            return RETRY
        log.error("%s deletion refused by Twilio: error %s", item.kind, exc.code)
        return REFUSED
    except (TwilioException, requests.RequestException):
        return RETRY
    except Exception:  # a bug must not lose the item, nor retry it for ever: it backs off and gives up
        log.exception("%s deletion failed", item.kind)
        return RETRY
    return DELETED


def _delete_batch(queue: PendingDeletions, items: list[Item]) -> int:
    outcomes = list(_pool().map(_delete_one, items))
    finished, counts, lags, now = [], {}, [], time.time()
    for item, outcome in zip(items, outcomes):
        if outcome == RETRY:
            counts["retry"] = counts.get("retry", 0) + 1
            if item.attempts < MAX_DELETE_RETRIES:
                queue.retry_later(item, backoff_seconds(item.attempts))
                continue
            logs.CORRELATION.set(logs.correlation_for(item.sid))
            log.error("%s not deleted after %s attempts: left to the history sweep", item.kind, item.attempts + 1)
            counts["gave_up"] = counts.get("gave_up", 0) + 1
        elif outcome == DELETED:
            counts[item.kind] = counts.get(item.kind, 0) + 1
            if item.final_at:
                lags.append(max(now - item.final_at, 0))
        elif outcome == REFUSED:
            counts["refused"] = counts.get("refused", 0) + 1
        finished.append(item)
    queue.done(*finished)
    metrics.DELETIONS.add(counts, lags=lags)
    return sum(1 for outcome in outcomes if outcome in (DELETED, GONE))


def _publish_drain(queue: PendingDeletions, token: str | None = None, countdown: float | None = None) -> None:
    """Publish a drain: one that was kicked (no token) or one that comes back later (its token)."""
    try:
        if token is None:
            drain_deletions.delay()
        else:
            drain_deletions.apply_async(kwargs={"token": token}, countdown=countdown)
    except (KombuError, redis.RedisError, OSError) as exc:
        log.warning("could not queue a drain of deletions: %s", type(exc).__name__)
        try:
            if token is None:
                queue.unkick()
            else:
                queue.release_next(token)
        except redis.RedisError:
            pass  # the flag lapses by itself within seconds; beat's drain runs meanwhile


@app.task(name="tasks.history.drain_deletions", acks_late=True)
def drain_deletions(token: str | None = None) -> int:
    """Delete what is queued and due, a batch at a time, until nothing is due (or the budget is spent:
    then a fresh drain takes over). Kicked by the web tier's first deletion after a drain started; run
    by beat every few seconds as a safety net; scheduled again by itself while retries are waiting."""
    queue = deletion_queue()
    queue.begin_drain(token)  # first: any deletion queued from now on asks for a drain of its own
    if not is_configured(settings):  # left queued, for a worker that has an account
        if queue.count():  # say why, but not every few seconds for an empty queue (`make run`)
            try:
                make_client(settings)
            except NotConfigured:
                pass
        return 0
    deadline = time.monotonic() + DRAIN_BUDGET_SECONDS
    deleted = 0
    while items := queue.lease(BATCH):
        deleted += _delete_batch(queue, items)
        if time.monotonic() > deadline:
            if queue.kick():
                _publish_drain(queue)
            return deleted
    later = queue.schedule_next(CAP_SECONDS)
    if later is not None:
        delay, token = later
        _publish_drain(queue, token, delay)
    return deleted


def _queue_deletion(kind: str, sid: str, final_at: float | None) -> bool:
    queue = deletion_queue()
    try:
        if queue.add(kind, sid, final_at):
            _publish_drain(queue)
    except ValueError:
        log.warning("%s deletion not queued: not a Twilio sid", kind)
        return False
    return True


# The web tier published one of these per deletion before deletions were queued in Redis; a deployment
# mid-upgrade may still have some queued. Each now joins the queue.
@app.task(name="tasks.history.delete_message", acks_late=True)
def delete_message(sid: str, final_at: float | None = None) -> bool:
    return _queue_deletion("message", sid, final_at)


@app.task(name="tasks.history.delete_call", acks_late=True)
def delete_call(sid: str, final_at: float | None = None) -> bool:
    return _queue_deletion("call", sid, final_at)


@app.task(name="tasks.history.sweep", acks_late=True)
def sweep(min_age_seconds: float | None = None) -> int:
    """Beat: queue for deletion the final messages and calls of the last few days that a lost callback
    left behind (an item already queued stays as it is), and kick a drain."""
    try:
        client = make_client(settings)
    except NotConfigured:
        return 0
    now = datetime.now(timezone.utc)
    min_age = SWEEP_MIN_AGE if min_age_seconds is None else timedelta(seconds=min_age_seconds)
    since = now - SWEEP_LOOKBACK
    messages = ((m.sid, m.status, m.date_updated or m.date_created)
                for m in client.messages.list(date_sent_after=since, page_size=200))
    calls = ((c.sid, c.status, c.end_time or c.date_updated)
             for c in client.calls.list(start_time_after=since, page_size=200))
    queue, queued, kick = deletion_queue(), 0, False
    for records, final, kind in ((messages, FINAL_MESSAGE, "message"), (calls, FINAL_CALL, "call")):
        for sid, status, stamp in records:
            if status in final and (stamp is None or now - stamp >= min_age):
                try:
                    kick = queue.add(kind, sid) or kick
                except ValueError:
                    continue
                metrics.DELETIONS.labels(f"swept_{kind}").inc()
                queued += 1
    if kick:
        _publish_drain(queue)
    return queued
