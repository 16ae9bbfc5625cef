"""Send a follow-up text exactly once, when it is due, and then forget the number.

Exactly once, even when a worker is killed mid-send: the follow-up is claimed (locked) and marked
'sending' before the REST call, and the text's StatusCallback names the follow-up (`/sms/status?f=<id>`),
so its status callback settles that follow-up and no other (router/store/pending.py). A later attempt that finds
'sending' (the earlier one died, or got no answer) asks Twilio whether the earlier one created a message
before sending again, in one of two ways (docs/deployment.md, "Exactly once, with or without redaction"):

- without Message Redaction: a message created through the API since the attempt, from our sender to that
  number (the list filtered by `To`);
- with Message Redaction (TWILIO_MESSAGE_REDACTION), Twilio obfuscates the number once the message is
  sent, so `To` finds nothing: every send we heard the answer to records its sid (hr:fu-sids); a message
  created through the API from our sender within the attempt's window whose sid nobody recorded can only
  be an attempt that never heard its answer, so it is taken as sent. This errs towards not texting a
  phone twice (someone else may hold it) over a second text.

Retention parameters (ContentRetention/AddressRetention) are sent only with TWILIO_MESSAGE_REDACTION:
Twilio refuses them otherwise (30029/30030, https://www.twilio.com/docs/api/errors/30029). Every
follow-up carries a ValidityPeriod (FOLLOWUP_VALIDITY_SECONDS): one still in Twilio's queue then is
dropped (30036) rather than arriving late, when someone else may hold the phone. 21611 (the sender's
queue is full, https://www.twilio.com/docs/api/errors/21611) is retried like 429. Never in silence: a
follow-up that finally cannot be sent (refused, out of retries, expired unsent, sealed with another key,
the number opted out at Twilio: 21610) is counted and logged, never with the number.

The dispatcher sends what is due itself, a batch at a time over a few threads (as deletions are
drained, tasks/history.py), instead of publishing a Celery task per follow-up: a task's publish,
delivery, hand-over to a pool process, log lines and ack cost the worker more CPU than the send itself,
and a prefork pool process sends one text at a time, idle while Twilio answers, where the threads wait
for several answers at once. An attempt Twilio asks us to retry (429, 5xx, 20009) or that got no answer
is handed to the per-follow-up task send_followup, which retries with backoff as before (and still takes
any such task queued by an older version). Claiming a follow-up (lock, read, mark 'sending') and
finishing it (forget it, release the lock) are one Redis round trip each (router/store/pending.py).
"""
from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import NamedTuple

import requests
from celery import shared_task
from kombu.exceptions import KombuError
from redis import RedisError
from twilio.base.exceptions import TwilioException, TwilioRestException

from router import logs
from router.settings import Settings
from router.store import counters as metrics
from router.store.pending import PendingFollowups
from router.twilio_rest import (NotConfigured, describe, is_configured, is_retryable, make_client,
                                make_thread_client)
from tasks import budget_seconds, settings_of
from tasks.process_local import once, worker_redis
from tasks.retry import backoff_seconds

log = logging.getLogger("tasks.followup")
MAX_SEND_RETRIES = 12
DISPATCH_BATCH = 32   # leased at once: at most 4 rounds of SEND_THREADS sends, well inside the lease
SEND_THREADS = 8      # Twilio takes 100+ ms a request; a few at once keep one worker process busy

SENT, DONE, BUSY, RETRY, ERROR = "sent", "done", "busy", "retry", "error"


class Outcome(NamedTuple):
    kind: str                 # SENT, DONE (nothing left to do), BUSY (another worker has it), RETRY, ERROR
    sid: str | None = None    # the message that is its text (SENT)
    label: str | None = None  # what helpline_worker_followups_total counts it as, if anything


UNSUBSCRIBED = 21610  # "Attempt to send to unsubscribed recipient": the number texted STOP to this sender
MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
# How long after an attempt started Twilio may have created its message: the REST client's timeout,
# and a margin for Twilio acting on a request whose answer never came back.
ATTEMPT_WINDOW_SECONDS = 60.0
OLDER_IN_A_ROW = 50   # messages older than the window, in a row, before the redacted lookup stops


def send_params(data: dict[str, str], settings: Settings) -> dict[str, object]:
    """What a follow-up's messages.create carries besides its sender (see the module docstring)."""
    params: dict[str, object] = {"to": data["to"], "body": data["body"], "status_callback": data["callback"],
                                 "validity_period": settings.followup_validity_seconds}
    if settings.message_redaction:
        params.update(content_retention="discard", address_retention="obfuscate")
    return params


def sender_params(sender: str) -> dict[str, str]:
    """A follow-up's sender as Twilio's Messages API takes it: a Messaging Service SID (MG...) as
    MessagingServiceSid, anything else (a number) as From. See router/web/followups.py for who it is."""
    if MESSAGING_SERVICE_SID.fullmatch(sender or ""):
        return {"messaging_service_sid": sender}
    return {"from_": sender}


def pending_store(settings: Settings) -> PendingFollowups:
    """The worker process's store, on its one Redis client."""
    return once("pending-followups", lambda: PendingFollowups.for_deployment(worker_redis(settings), settings))


def _pool() -> ThreadPoolExecutor:
    """The send threads of this worker process."""
    return once("send-threads", lambda: ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="send"))


@shared_task(name="tasks.followup.dispatch_due", acks_late=True)
def dispatch_due() -> int:
    """Send every follow-up that is due (and any whose earlier attempt was lost). Run by beat, and kicked
    by the web tier for 'now' follow-ups: it clears the kick flag first, so a 'now' follow-up added
    after that asks for another dispatch, and one added before is already in hr:fu-due to be leased.
    Leases a batch at a time (a dispatch killed mid-way loses nothing: its batch comes due again when
    the lease runs out) until fewer than a batch are due, or the budget is spent: then a fresh dispatch
    takes over."""
    settings = settings_of()
    store = pending_store(settings)
    store.begin_dispatch()
    deadline = time.monotonic() + budget_seconds(settings)
    sent = 0
    while True:
        ids, expired = store.lease_due(limit=DISPATCH_BATCH)
        if expired:
            _gave_up(expired, "expired", "follow-ups expired unsent (no worker sent them in their lifetime)")
        if ids:
            sent += _send_batch(ids, settings)
        if len(ids) < DISPATCH_BATCH:
            return sent
        if time.monotonic() > deadline:
            if store.kick():
                _publish(store, dispatch_due, ())
            return sent


def _send_batch(ids: list[str], settings: Settings) -> int:
    outcomes = list(_pool().map(partial(_send_in_thread, settings), ids))
    counts: dict[str, float] = {}
    for fid, outcome in zip(ids, outcomes):
        if outcome.label:
            counts[outcome.label] = counts.get(outcome.label, 0) + 1
        if outcome.kind == RETRY:  # backoff and retries as ever, in a task of its own
            _publish(None, send_followup, (fid,), countdown=backoff_seconds(0, settings.task_retry_base_seconds))
    metrics.FOLLOWUPS.add(counts)
    return sum(1 for outcome in outcomes if outcome.kind == SENT)


def _gave_up(count: int, label: str, why: str) -> None:
    """Follow-ups that will never be sent: counted (helpline_worker_followups_total{kind=label}, alerted
    on: deploy/alerts.yml) and logged without any number, so no promised text is lost in silence."""
    log.error("%d %s", count, why)
    metrics.FOLLOWUPS.labels(label).inc(count)


def _publish(store: PendingFollowups | None, task, args: tuple, countdown: float | None = None) -> None:
    """Publish a task; if the broker refuses, the follow-up waits for its lease to run out (and a dispatch
    that could not hand over lets the next 'now' follow-up ask again)."""
    try:
        task.apply_async(args, countdown=countdown)
    except (KombuError, RedisError, OSError) as exc:
        log.warning("could not queue %s: %s", task.name, type(exc).__name__)
        if store is not None:
            try:
                store.begin_dispatch()
            except RedisError:
                pass  # the flag lapses within seconds by itself


def _send_in_thread(settings: Settings, fid: str) -> Outcome:
    """One attempt in a send thread, with a REST client of the thread's own, logging under the id's
    correlation id as the task did."""
    logs.CORRELATION.set(logs.correlation_for(fid))
    try:
        client = make_thread_client(settings) if is_configured(settings) else None
        return attempt(pending_store(settings), client, fid, settings)
    except Exception:  # Redis gone, a bug: left leased, so it comes due again when the lease runs out
        log.exception("follow-up %s not sent", fid[:8])
        return Outcome(ERROR)


def _already_sent(client, data: dict[str, str], store: PendingFollowups | None = None,
                  redaction: bool = False) -> str | None:
    """After a crash mid-send: the sid of a message Twilio created for this follow-up, if any.

    Only a message created through the REST API from the follow-up's sender counts ("outbound-api"):
    the app's own TwiML replies to that texter ("outbound-reply") are not its text. With redaction,
    see _unclaimed_in_window."""
    if redaction:
        return _unclaimed_in_window(client, data, store)
    attempt_at = float(data.get("attempt_at") or 0)
    # Sent through a Messaging Service, a message's From is a number of its pool, not the MG SID.
    service = data["from"] if MESSAGING_SERVICE_SID.fullmatch(data["from"] or "") else None
    found = client.messages.list(to=data["to"], limit=50) if service else \
        client.messages.list(to=data["to"], from_=data["from"], limit=50)
    # No DateSent filter: a message still queued at Twilio has no date_sent yet. Newest come first.
    for message in found:
        created = message.date_created.timestamp() if message.date_created else 0
        if service and getattr(message, "messaging_service_sid", None) != service:
            continue
        if message.direction == "outbound-api" and created >= attempt_at - 2:
            return message.sid
    return None


def _unclaimed_in_window(client, data: dict[str, str], store: PendingFollowups | None) -> str | None:
    """With Message Redaction: a message created through the API from our sender within the earlier
    attempt's window whose sid no finished send recorded (router/store/pending.py, hr:fu-sids). Twilio lists
    newest first, but by date sent, and a message still queued has none: so the listing stops only after
    OLDER_IN_A_ROW messages older than the window, not at the first."""
    attempt_at = float(data.get("attempt_at") or 0)
    service = data["from"] if MESSAGING_SERVICE_SID.fullmatch(data["from"] or "") else None
    known = store.sent_sids(attempt_at - 2) if store is not None else set()
    listing = client.messages.stream(page_size=50) if service else \
        client.messages.stream(from_=data["from"], page_size=50)
    older = 0
    for message in listing:
        created = message.date_created.timestamp() if message.date_created else 0
        if created < attempt_at - 2:
            older += 1
            if older >= OLDER_IN_A_ROW:
                return None
            continue
        older = 0
        if created > attempt_at + ATTEMPT_WINDOW_SECONDS or message.direction != "outbound-api":
            continue
        if service and getattr(message, "messaging_service_sid", None) != service:
            continue
        if message.sid not in known:
            return message.sid
    return None


def attempt(store: PendingFollowups, client, fid: str, settings: Settings) -> Outcome:
    """Send follow-up `fid` unless it is sent, cancelled or held by another worker; client None: no
    Twilio account, so it is refused (and forgotten). Never sends what an earlier attempt sent."""
    # lock + read + mark 'sending' (if it is 'pending' and we can send) in one round trip
    data = store.claim(fid, time.time(), mark_sending=client is not None)
    if data is False:
        return Outcome(BUSY)  # another worker has it; if that worker dies the lease re-dispatches it
    if data is None:
        return Outcome(DONE)  # sent or cancelled already (claim released the lock)
    if client is None:
        try:
            make_client(settings)  # logs why
        except NotConfigured:
            pass
        store.finish(fid, unlock=True)
        return Outcome(DONE, label="refused")
    if data.get("problem"):  # unsealed or not sealed with our keys: never sent (router/store/pending.py _opened)
        log.error("follow-up %s is %s (not sealed with this deployment's key): dropped, not sent", fid[:8],
                  data["problem"])
        store.finish(fid, unlock=True)
        return Outcome(DONE, label=data["problem"])
    locked = True
    try:
        if data.get("status") == "sending":  # an earlier attempt died mid-send: did its text go out?
            try:
                sid = _already_sent(client, data, store, settings.message_redaction)
            except (TwilioException, requests.RequestException) as exc:  # no answer: try again later
                log.warning("follow-up %s: Twilio not asked whether it was sent: %s", fid[:8], describe(exc))
                return Outcome(RETRY, label="retried")
            if sid:
                log.info("follow-up %s was already sent before a restart; not sending again", fid[:8])
                store.remember_sent(sid)
                store.finish(fid, unlock=True)
                locked = False
                return Outcome(SENT, sid, "sent")
            if not store.mark_sending(fid, time.time()):  # settled or stopped while we asked Twilio
                store.unlock(fid)
                locked = False
                return Outcome(DONE)
        try:
            message = client.messages.create(**send_params(data, settings), **sender_params(data["from"]))
        except TwilioRestException as exc:
            if is_retryable(exc):
                store.unlock(fid)
                locked = False
                return Outcome(RETRY, label="retried")
            if exc.code == UNSUBSCRIBED:
                # The person texted STOP to this sender at Twilio: final. Never retried, and nothing
                # else is sent to that number either (every pending follow-up for it is cancelled).
                log.warning("follow-up %s: the number has opted out at Twilio (error 21610); cancelled", fid[:8])
                store.finish(fid, unlock=True)
                locked = False
                store.cancel_for_number(data["to"])
                return Outcome(DONE, label="unsubscribed")
            log.error("follow-up %s refused by Twilio: error %s", fid[:8], exc.code)
            store.finish(fid, unlock=True)
            locked = False
            return Outcome(DONE, label="failed")
        except (TwilioException, requests.RequestException):
            store.unlock(fid)  # no answer: next attempt asks Twilio whether it was created
            locked = False
            return Outcome(RETRY, label="retried")
        store.remember_sent(message.sid)
        store.finish(fid, unlock=True)
        locked = False
        return Outcome(SENT, message.sid, "sent")
    finally:
        if locked:
            store.unlock(fid)


@shared_task(name="tasks.followup.send_followup", bind=True, acks_late=True, max_retries=MAX_SEND_RETRIES)
def send_followup(self, fid: str) -> bool:
    """One follow-up, retried with backoff: what a dispatch hands over when Twilio asks us to retry.
    Returns whether it was sent, never the message's sid: Celery logs a task's return value ("succeeded
    in 0.2s: ..."), and a MessageSid is an identifier that stays out of logs."""
    settings = settings_of(self.app)
    client = make_client(settings) if is_configured(settings) else None
    store = pending_store(settings)
    outcome = attempt(store, client, fid, settings)
    if outcome.label:
        metrics.FOLLOWUPS.labels(outcome.label).inc()
    if outcome.kind == RETRY:
        if self.request.retries >= self.max_retries:  # Twilio kept asking us to wait: give up, loudly
            store.finish(fid)
            _gave_up(1, "failed", f"follow-up {fid[:8]} not sent after {self.max_retries} retries")
            return False
        raise self.retry(countdown=backoff_seconds(self.request.retries, settings.task_retry_base_seconds), exc=None)
    return outcome.kind == SENT
