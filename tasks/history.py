"""Leave nothing at Twilio: delete every message and call record once it is final, and sweep for any
whose status callback was lost.

Twilio answers error 20009 while a message is still being processed: that, 429 and 5xx are retried
with capped exponential backoff and jitter until Twilio confirms; 'not found' means already gone.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException

from tasks import app, settings
from tasks import metrics
from tasks.retry import backoff_seconds
from tasks.twilio_api import NotConfigured, is_gone, is_retryable, make_client

log = logging.getLogger("tasks.history")
MAX_DELETE_RETRIES = 120  # about half an hour at the 15 s cap; the sweep takes over after that
FINAL_MESSAGE = frozenset({"delivered", "undelivered", "failed", "received", "read", "canceled"})
FINAL_CALL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
SWEEP_LOOKBACK = timedelta(days=3)
SWEEP_MIN_AGE = timedelta(minutes=5)


def _delete(task, kind: str, sid: str, final_at: float | None) -> bool:
    try:
        client = make_client(settings)
    except NotConfigured:
        return False
    resource = client.messages(sid) if kind == "message" else client.calls(sid)
    try:
        resource.delete()
    except TwilioRestException as exc:
        if is_gone(exc):
            return True
        if is_retryable(exc):
            metrics.DELETIONS.labels("retry").inc()
            raise task.retry(countdown=backoff_seconds(task.request.retries), exc=None)
        log.error("%s deletion refused by Twilio: error %s", kind, exc.code)
        return False
    except (TwilioException, requests.RequestException):
        metrics.DELETIONS.labels("retry").inc()
        raise task.retry(countdown=backoff_seconds(task.request.retries), exc=None)
    metrics.DELETIONS.labels(kind).inc()
    if final_at:
        metrics.observe_deletion_lag(max(time.time() - final_at, 0))
    return True


@app.task(name="tasks.history.delete_message", bind=True, acks_late=True, max_retries=MAX_DELETE_RETRIES)
def delete_message(self, sid: str, final_at: float | None = None) -> bool:
    return _delete(self, "message", sid, final_at)


@app.task(name="tasks.history.delete_call", bind=True, acks_late=True, max_retries=MAX_DELETE_RETRIES)
def delete_call(self, sid: str, final_at: float | None = None) -> bool:
    return _delete(self, "call", sid, final_at)


@app.task(name="tasks.history.sweep", acks_late=True)
def sweep(min_age_seconds: float | None = None) -> int:
    """Beat: delete final messages and calls of the last few days that a lost callback left behind."""
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
    queued = 0
    for records, final, task, label in ((messages, FINAL_MESSAGE, delete_message, "swept_message"),
                                        (calls, FINAL_CALL, delete_call, "swept_call")):
        for sid, status, stamp in records:
            if status in final and (stamp is None or now - stamp >= min_age):
                task.delay(sid)
                metrics.DELETIONS.labels(label).inc()
                queued += 1
    return queued
