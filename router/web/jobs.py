"""The web tier's side of background work: store a follow-up, cancel them, ask for deletions.

Web requests must answer in milliseconds even when Redis is down, so every call here is best effort:
failures are logged (without numbers) and counted, never raised.

Tasks are sent by name (producer): the web tier never imports the workers' code.

A deletion is queued in Redis (router/store/deletions.py: one EVALSHA) and a drain task is published only when
none has been asked for yet, instead of one Celery publish per deletion. If Redis refuses the enqueue,
the old per-sid task is published instead (it queues the deletion from the worker's side); if the broker
refuses that too (Redis restarting, or a Sentinel failover: the broker is the same Redis), the sid is
kept in the process and queued with the next deletion that reaches Redis; the history sweep remains the
net for a process that stops meanwhile (it finds the message or call within ~10 minutes).
"""
from __future__ import annotations

import logging
import re
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any

import redis
from kombu.exceptions import KombuError

from router import metrics
from router.definition import phone
from router.engine import Followup
from router.store.limits import Booking, FollowupLimits
from router.definition.model import Limits
from router.settings import Settings
from router.store.connection import make_redis

log = logging.getLogger("router.web.jobs")
BROKER_DOWN_PAUSE_SECONDS = 2.0
FOLLOWUP_ID = re.compile(r"[0-9a-f]{32}")  # router.store.pending.followup_id
# Deletions that could be neither queued nor published, kept until Redis answers again: Twilio sids and
# times only (no number, no text), and bounded; beyond this many the oldest are left to the sweep.
UNQUEUED_DELETIONS_MAX = 10_000


def producer(settings: Settings) -> Any:
    """A Celery app that only sends tasks, by name, to the workers' broker (router/store/broker.py: the
    same broker settings the workers' app is built with). The router never imports the workers' code
    (tasks/): a task's name is the whole contract."""
    from celery import Celery  # loaded at the first publish, not by every web worker at start

    from router.store.broker import broker_config

    app = Celery("router.web", set_as_current=False)
    app.conf.update(broker_config(settings.redis_url, settings.celery_visibility_timeout))
    return app


class Jobs:
    def __init__(self, settings: Settings, client: redis.Redis | None = None):
        self.settings = settings
        self.client = client or make_redis(settings.redis_url)
        self._broker_down_until = 0.0
        self._queue_down_until = 0.0
        self._celery: Any = None   # producer(settings), at the first publish
        self._deletion_queue = None
        self._pending_store = None
        self._limits: FollowupLimits | None = None
        self._unqueued: deque[tuple[str, str, float]] = deque(maxlen=UNQUEUED_DELETIONS_MAX)

    def _pending(self):
        if self._pending_store is None:
            from router.store.pending import PendingFollowups

            self._pending_store = PendingFollowups.for_deployment(self.client, self.settings)
        return self._pending_store

    def _followup_limits(self) -> FollowupLimits:
        if self._limits is None:
            self._limits = FollowupLimits(self.client, self.settings.state_key_secret())
        return self._limits

    def _deletions(self):
        if self._deletion_queue is None:
            from router.store.deletions import PendingDeletions

            self._deletion_queue = PendingDeletions.for_deployment(self.client, self.settings)
        return self._deletion_queue

    def _send(self, task: str, *args) -> bool:
        if time.monotonic() < self._broker_down_until:
            return False
        try:
            if self._celery is None:
                self._celery = producer(self.settings)
            self._celery.send_task(task, args=args, retry=False)
            return True
        except (KombuError, redis.RedisError, OSError) as exc:
            self._broker_down_until = time.monotonic() + BROKER_DOWN_PAUSE_SECONDS
            log.warning("could not queue %s: %s", task, type(exc).__name__)
            metrics.ERRORS.labels("queue").inc()
            return False

    def schedule_followup(self, *, to: str, from_: str, trigger: str, followup: Followup, callback: str,
                          lang: str = "en", limits: Limits | None = None) -> Booking:
        """Keep a follow-up the person said yes to until it is due, within the limits (router/store/limits.py);
        for 'now', a dispatch is asked for at once (one publish for all the 'now' follow-ups that arrive
        before it starts).

        KEPT when it is kept (or already was: a retried webhook); otherwise why not, and the person
        must be told rather than promised a text that will not come."""
        number = phone.textable_number(to, self.settings.followup_countries)  # allowed mobile, normalised
        if number is None:
            log.warning("follow-up refused: the number cannot receive texts")
            return Booking.FAILED
        from router.store.pending import followup_id

        fid = followup_id(self.settings.state_key_secret(), trigger, followup.service_id)
        try:
            reservation = self._followup_limits().reserve(fid, number, followup.service_id, limits or Limits(),
                                                          send_at=followup.send_at)
            if not reservation:
                return reservation.booking
            send_at, at_once = followup.send_at, followup.when == "now"
            if reservation.delay_minutes:  # everyone's cap for that minute is reached: later, not refused
                send_at = max(send_at, datetime.now(timezone.utc)) + timedelta(minutes=reservation.delay_minutes)
                at_once = False
            # the callback names the follow-up, so only its own text's status can settle it
            added = self._pending().add(fid, to=number, from_=from_, body=followup.body,
                                        callback=f"{callback}?f={fid}", send_at=send_at, at_once=at_once)
        except (redis.RedisError, OSError):
            log.error("follow-up not stored: redis unavailable")
            metrics.ERRORS.labels("followup_store").inc()
            try:
                self._followup_limits().release(number, followup.service_id)
            except (redis.RedisError, OSError):
                pass
            return Booking.FAILED
        if added.kick and not self._send("tasks.followup.dispatch_due"):
            try:  # let the next 'now' follow-up ask again; beat's dispatcher sends this one meanwhile
                self._pending().begin_dispatch()
            except (redis.RedisError, OSError):
                pass
        return Booking.KEPT

    def cancel_followups(self, number: str) -> int | None:
        """Cancel every follow-up pending for this number: how many (0: there were none), or None when
        Redis could not record it. The caller must then not say "cancelled" (issue 18)."""
        try:
            return self._pending().cancel_for_number(phone.normalise_sender(number) or number)
        except (redis.RedisError, OSError):
            log.error("follow-ups not cancelled: redis unavailable")
            metrics.ERRORS.labels("followup_cancel").inc()
            return None

    def release_followup_limits(self, number: str, service_ids) -> None:
        """After a stop: the same-service places of this number are free again (router/store/limits.py)."""
        key = phone.textable_number(number, self.settings.followup_countries)  # as schedule_followup keys it
        if key is None:
            return
        try:
            self._followup_limits().release_all(key, service_ids)
        except (redis.RedisError, OSError):
            log.warning("follow-up limits not released: redis unavailable")

    def message_reported(self, followup: str) -> None:
        """A status callback for a message created for follow-up `followup` (the `f` of its
        StatusCallback URL, signed by Twilio): that follow-up was sent; settle it if its worker has not
        (it died before hearing Twilio's answer). Callbacks without one (the app's replies) settle nothing."""
        if not FOLLOWUP_ID.fullmatch(followup):
            return
        try:
            self._pending().settle(followup)
        except (redis.RedisError, OSError):
            log.warning("follow-up state not settled: redis unavailable")

    def delete_message(self, sid: str) -> bool:
        """Ask for a message to be deleted from Twilio (an inbound text once answered, a sent one once final)."""
        return self._delete("message", sid)

    def delete_call(self, sid: str) -> bool:
        """Ask for a call record to be deleted from Twilio once the call has ended."""
        return self._delete("call", sid)

    def _delete(self, kind: str, sid: str) -> bool:
        from router.store.deletions import valid_sid

        if not valid_sid(kind, sid):
            log.warning("%s deletion not queued: not a Twilio sid", kind)
            return False
        final_at = time.time()
        if time.monotonic() >= self._queue_down_until:
            try:
                kick = self._deletions().add(kind, sid, final_at)
                if self._requeue_unqueued() or kick:
                    self._kick()
                return True
            except (redis.RedisError, OSError) as exc:
                self._queue_down_until = time.monotonic() + BROKER_DOWN_PAUSE_SECONDS
                log.warning("%s deletion not queued in redis: %s", kind, type(exc).__name__)
                metrics.ERRORS.labels("deletion_queue").inc()
        if self._send(f"tasks.history.delete_{kind}", sid, final_at):
            return True
        self._unqueued.append((kind, sid, final_at))
        return False

    def deletion_queued(self, drain_wanted: bool) -> None:
        """The store queued a deletion on the way (a text's arrival, router/store/conversations.py): publish
        the drain it asks for, and queue any deletions kept while Redis could not take them."""
        try:
            if self._requeue_unqueued() or drain_wanted:
                self._kick()
        except (redis.RedisError, OSError) as exc:
            self._queue_down_until = time.monotonic() + BROKER_DOWN_PAUSE_SECONDS
            log.warning("kept deletions not queued in redis: %s", type(exc).__name__)

    def _requeue_unqueued(self) -> bool:
        """Queue the deletions kept while neither Redis nor the broker could take them (e.g. the final
        status callbacks of texts that arrived during a Sentinel failover): without this they waited
        for the history sweep, 5 to 10 minutes. True if a drain should be published."""
        kick = False
        while self._unqueued:
            item = self._unqueued.popleft()
            try:
                kick = self._deletions().add(*item) or kick
            except (redis.RedisError, OSError):
                self._unqueued.appendleft(item)
                raise
        return kick

    def _kick(self) -> None:
        """Publish one drain; if that fails, let the next deletion try (beat's drain runs meanwhile)."""
        if self._send("tasks.history.drain_deletions"):
            return
        try:
            self._deletions().unkick()
        except (redis.RedisError, OSError):
            pass  # the flag lapses within seconds by itself
