"""The Celery app: follow-up texts and deleting history from Twilio, on the same Redis as the web tier.

Tasks are acknowledged late and re-queued if their worker dies, so nothing is lost; every task is
idempotent (a follow-up is claimed in Redis before it is sent, deletions treat 'not found' as done),
so nothing is done twice. No result backend: nothing about a task outlives it.
"""
from __future__ import annotations

import os

from celery import Celery, signals

from router import logs

from router.settings import load_settings
from router.store import counters
from router.store.state import parse_sentinel_url
from tasks.beat_schedule import default_schedule_path
from tasks.broker import broker_options

settings = load_settings()
logs.set_correlation_key(settings.correlation_key())  # the web tier's ids, from the deployment's secret
counters.configure(settings.redis_url)  # the workers' counters (router/store/counters.py): no router -> tasks import

# A task taken by a worker that then died is handed to another after this long. Tasks here take
# seconds; scheduled follow-ups wait in Redis (not as ETA tasks), so this can be short.
VISIBILITY_TIMEOUT_SECONDS = float(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "30"))
DISPATCH_EVERY_SECONDS = float(os.environ.get("FOLLOWUP_DISPATCH_SECONDS", "10"))
SWEEP_EVERY_SECONDS = float(os.environ.get("HISTORY_SWEEP_SECONDS", "300"))
# Deletions are drained when the web tier kicks a drain and again while retries wait; beat's drain is
# only the safety net for a kick that was lost (e.g. the broker refused it).
DRAIN_EVERY_SECONDS = float(os.environ.get("DELETION_DRAIN_SECONDS", "10"))
HEARTBEAT_SECONDS = float(os.environ.get("HEARTBEAT_SECONDS", "15"))  # tasks/health.py



def make_celery(redis_url: str) -> Celery:
    """The Celery app on a given Redis; the web tier builds one with its own settings to queue tasks."""
    transport = {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
                 "unacked_restore_throttle": 1,  # look for tasks of dead workers every ~10 s, not ~100 s
                 "socket_connect_timeout": 1, "socket_timeout": 5}
    sentinel = parse_sentinel_url(redis_url)
    if sentinel is not None:  # kombu takes the master's name as an option, not in the URL
        redis_url = sentinel.broker_url
        transport.update(master_name=sentinel.master_name,
                         sentinel_kwargs={"password": sentinel.sentinel_password, "socket_timeout": 1})
    celery = Celery("tasks", broker=redis_url, include=["tasks.followup", "tasks.history", "tasks.health"],
                    task_cls="tasks.twilio_api:QuietTask")
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        result_backend=None,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options=transport,
        broker_connection_timeout=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        beat_schedule={
            "dispatch-due-followups": {"task": "tasks.followup.dispatch_due", "schedule": DISPATCH_EVERY_SECONDS},
            "sweep-history": {"task": "tasks.history.sweep", "schedule": SWEEP_EVERY_SECONDS},
            "drain-deletions": {"task": "tasks.history.drain_deletions", "schedule": DRAIN_EVERY_SECONDS},
            "heartbeat": {"task": "tasks.health.heartbeat", "schedule": HEARTBEAT_SECONDS,
                          "options": {"expires": HEARTBEAT_SECONDS * 4}},
        },
        timezone="Europe/London",
        # beat's schedule is a pickle: kept only in a private folder (tasks/beat_schedule.py)
        beat_scheduler="tasks.beat_schedule:PrivateScheduler",
        beat_schedule_filename=str(default_schedule_path()),
        # kombu's Redis transport with the fix that keeps a worker running through a Redis restart
        **broker_options(redis_url),
    )
    return celery


app = make_celery(settings.redis_url)


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _json_logs(logger=None, **_):
    """Workers and beat log one JSON line per event, like the web tier, through the number filter."""
    for handler in logger.handlers:
        logs.use_json(handler)
    logs.protect_all()


@signals.task_prerun.connect
def _correlate(args=None, **_):
    """A deletion logs under the same correlation id as the webhook that asked for it."""
    first = args[0] if args else None
    logs.CORRELATION.set(logs.correlation_for(first if isinstance(first, str) else None))
celery_app = app
