"""Leave nothing at Twilio: delete every message and call record once it is final, and sweep for any
whose status callback was lost.

Deletions wait in Redis (router/store/deletions.py), each first due a minute after it was queued (Twilio asks
for that wait); drain_deletions deletes them a batch at a time over a few threads. Twilio answers error
20009 while a record is not final, which "in rare cases" lasts up to 14 days
(https://www.twilio.com/docs/api/errors/20009): that, 429, 5xx and no answer are retried with a backoff
that grows from seconds to an hour (tasks/retry.py) for 15 days; 'not found' means already gone; after
that the sweep takes over.

The sweep touches only the helpline's records: messages and calls to or from its own numbers
(HELPLINE_NUMBERS), the follow-up sender and the numbers of its Messaging Service, and the legs of those
calls; never the rest of the account (a dedicated subaccount is safer still: docs/deployment.md). It
looks back 15 days. A message left `sent` (UK carriers often send no delivery receipt, so `sent` can be
final) or `partially_delivered` is taken as final after SENT_FINAL_AFTER_SECONDS.

What this cannot delete, because Twilio's API offers no way to (docs/deployment.md, "What remains at
Twilio"): Monitor alerts and the error log (which keep the request data of failed webhooks), call events,
Voice Insights, Twilio's backups, its opt-out list, and the history on the person's own phone.
"""
from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from functools import partial

import redis
import requests
from celery import shared_task
from kombu.exceptions import KombuError
from twilio.base.exceptions import TwilioException, TwilioRestException

from router import logs
from router.settings import Settings
from router.store import counters as metrics
from router.store.deletions import Item, PendingDeletions
from router.store.own_numbers import OwnNumbers
from router.twilio_rest import (NotConfigured, is_configured, is_gone, is_retryable, make_client,
                                make_thread_client)
from tasks import budget_seconds, settings_of
from tasks.process_local import once, worker_redis
from tasks.retry import CAP_SECONDS, deletion_attempts_within, deletion_backoff_seconds

log = logging.getLogger("tasks.history")
# at least 15 days of retries (at the default pace; max_delete_retries: at the deployment's); then the sweep
FINAL_MESSAGE = frozenset({"delivered", "undelivered", "failed", "received", "read", "canceled"})
# Final once no receipt came for Settings.sent_final_after_seconds (SENT_FINAL_AFTER_SECONDS, 6 hours: not
# documented by Twilio; most receipts come in minutes)
FINAL_AFTER_WAIT = frozenset({"sent", "partially_delivered"})
FINAL_CALL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
SWEEP_LOOKBACK = timedelta(days=15)
SWEEP_MIN_AGE = timedelta(minutes=5)
BATCH = 32      # leased at once: at most 4 rounds of THREADS requests, well inside the lease
THREADS = 8     # Twilio takes 100+ ms a request; a few at once keep one worker process busy

DELETED, GONE, RETRY, REFUSED = "deleted", "gone", "retry", "refused"

def deletion_queue(settings: Settings) -> PendingDeletions:
    """The worker process's queue, on its one Redis client."""
    return once("deletion-queue", lambda: PendingDeletions.for_deployment(worker_redis(settings), settings))


def max_delete_retries(settings: Settings) -> int:
    """Tries before a deletion is left to the sweep: at least 15 days of them at this deployment's pace."""
    return deletion_attempts_within(base=settings.task_retry_base_seconds)


def _pool() -> ThreadPoolExecutor:
    return once("delete-threads", lambda: ThreadPoolExecutor(THREADS, thread_name_prefix="delete"))


def _delete_one(settings: Settings, item: Item) -> str:
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


def _delete_batch(queue: PendingDeletions, items: list[Item], settings: Settings) -> int:
    outcomes = list(_pool().map(partial(_delete_one, settings), items))
    finished, lags, now = [], [], time.time()
    counts: dict[str, float] = {}
    for item, outcome in zip(items, outcomes):
        if outcome == RETRY:
            counts["retry"] = counts.get("retry", 0) + 1
            if item.attempts < max_delete_retries(settings):
                queue.retry_later(item, deletion_backoff_seconds(item.attempts, settings.task_retry_base_seconds))
                continue
            logs.CORRELATION.set(logs.correlation_for(item.sid))
            log.error("%s not deleted after %s attempts over 15 days: left to the history sweep", item.kind,
                      item.attempts + 1)
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


@shared_task(name="tasks.history.drain_deletions", acks_late=True)
def drain_deletions(token: str | None = None) -> int:
    """Delete what is queued and due, a batch at a time, until nothing is due (or the budget is spent:
    then a fresh drain takes over). Kicked by the web tier's first deletion after a drain started; run
    by beat every few seconds as a safety net; scheduled again by itself while retries are waiting."""
    settings = settings_of()
    queue = deletion_queue(settings)
    queue.begin_drain(token)  # first: any deletion queued from now on asks for a drain of its own
    if not is_configured(settings):  # left queued, for a worker that has an account
        if queue.count():  # say why, but not every few seconds for an empty queue (`make run`)
            try:
                make_client(settings)
            except NotConfigured:
                pass
        return 0
    deadline = time.monotonic() + budget_seconds(settings)
    deleted = 0
    while items := queue.lease(BATCH):
        deleted += _delete_batch(queue, items, settings)
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
    queue = deletion_queue(settings_of())
    try:
        if queue.add(kind, sid, final_at):
            _publish_drain(queue)
    except ValueError:
        log.warning("%s deletion not queued: not a Twilio sid", kind)
        return False
    return True


# The web tier published one of these per deletion before deletions were queued in Redis; a deployment
# mid-upgrade may still have some queued. Each now joins the queue.
@shared_task(name="tasks.history.delete_message", acks_late=True)
def delete_message(sid: str, final_at: float | None = None) -> bool:
    return _queue_deletion("message", sid, final_at)


@shared_task(name="tasks.history.delete_call", acks_late=True)
def delete_call(sid: str, final_at: float | None = None) -> bool:
    return _queue_deletion("call", sid, final_at)


def our_numbers(client, settings: Settings) -> list[str]:
    """The numbers whose records the sweep may delete: HELPLINE_NUMBERS and the numbers calls and texts
    came in to (router/store/own_numbers.py), the follow-up sender if it is a number, and the numbers of its
    Messaging Service if it is one (asked of Twilio)."""
    numbers = list(settings.helpline_numbers) + sorted(OwnNumbers(worker_redis(settings)).known())
    sender = settings.followup_sender or ""
    if re.fullmatch(r"MG[0-9a-fA-F]{32}", sender):
        try:
            numbers += [n.phone_number for n in client.messaging.v1.services(sender).phone_numbers.list()]
        except TwilioRestException as exc:  # the other numbers are still swept; `router twilio check` says why
            log.error("the follow-up sender's Messaging Service could not be read: error %s", exc.code)
    elif sender.startswith("+"):
        numbers.append(sender)
    return list(dict.fromkeys(numbers))


def _our_messages(client, numbers: list[str], since: datetime):
    seen: set[str] = set()
    for number in numbers:
        for filters in ({"to": number}, {"from_": number}):
            for m in client.messages.list(date_sent_after=since, page_size=200, **filters):
                if m.sid not in seen:
                    seen.add(m.sid)
                    yield m.sid, m.status, m.date_updated or m.date_created


def _our_calls(client, numbers: list[str], since: datetime):
    """Calls to or from our numbers, and the legs they dialled (a <Dial>'s leg is From the caller)."""
    seen: set[str] = set()
    for number in numbers:
        for filters in ({"to": number}, {"from_": number}):
            for c in client.calls.list(start_time_after=since, page_size=200, **filters):
                for call in [c] + (client.calls.list(parent_call_sid=c.sid, page_size=50)
                                   if c.status in FINAL_CALL else []):
                    if call.sid not in seen:
                        seen.add(call.sid)
                        yield call.sid, call.status, call.end_time or call.date_updated


def _final_enough(status: str, stamp, now: datetime, min_age: timedelta, final: frozenset[str],
                  sent_final_after: timedelta) -> bool:
    age = None if stamp is None else now - stamp
    if status in final:
        return age is None or age >= min_age
    if final is FINAL_MESSAGE and status in FINAL_AFTER_WAIT:
        return age is not None and age >= max(min_age, sent_final_after)
    return False


_unscoped_logged = False


@shared_task(name="tasks.history.sweep", acks_late=True)
def sweep(min_age_seconds: float | None = None) -> int:
    """Beat: queue for deletion the final messages and calls of the last 15 days, to or from our own
    numbers, that a lost callback left behind (an item already queued stays as it is), and kick a drain.
    Knowing none of our numbers, it deletes nothing: the list calls return the whole account."""
    global _unscoped_logged
    settings = settings_of()
    try:
        client = make_client(settings)
    except NotConfigured:
        return 0
    numbers = our_numbers(client, settings)
    if not numbers:
        if not _unscoped_logged:
            log.error("no number of the helpline is known yet (HELPLINE_NUMBERS is not set and no call or "
                      "text has come in): the history sweep deletes nothing rather than touch the whole "
                      "account's records")
            _unscoped_logged = True
        return 0
    now = datetime.now(timezone.utc)
    min_age = SWEEP_MIN_AGE if min_age_seconds is None else timedelta(seconds=min_age_seconds)
    since = now - SWEEP_LOOKBACK
    sent_final_after = timedelta(seconds=settings.sent_final_after_seconds)
    queue, queued, kick = deletion_queue(settings), 0, False
    for records, final, kind in ((_our_messages(client, numbers, since), FINAL_MESSAGE, "message"),
                                 (_our_calls(client, numbers, since), FINAL_CALL, "call")):
        for sid, status, stamp in records:
            if _final_enough(status, stamp, now, min_age, final, sent_final_after):
                try:
                    kick = queue.add(kind, sid, delay=0) or kick
                except ValueError:
                    continue
                metrics.DELETIONS.labels(f"swept_{kind}").inc()
                queued += 1
    if kick:
        _publish_drain(queue)
    return queued
