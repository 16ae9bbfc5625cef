"""The Celery app: follow-up texts and deleting history from Twilio, on the same Redis as the web tier.

Tasks are acknowledged late and re-queued if their worker dies, so nothing is lost; every task is
idempotent (a follow-up is claimed in Redis before it is sent, deletions treat 'not found' as done),
so nothing is done twice. No result backend: nothing about a task outlives it.

Importing this package does nothing but define create_celery: it reads no environment, builds no app
and touches no process-wide state (Flask's and Celery's own pattern: an app built from settings passed
in). `celery -A tasks worker|beat` finds the app in tasks/celery.py (Celery's find_app looks for the
submodule `tasks.celery` when the package has no `app`), which builds it from the environment once.
The tasks themselves are `shared_task`s (tasks/followup.py, tasks/history.py, tasks/health.py): they
belong to whichever app runs them and read that app's settings (settings_of), so tests build as many
apps as they like with create_celery(settings). This is Celery's own layout for a reusable package: the
app in a `celery.py` module, tasks as shared_task, created on every app when it is finalized
(https://docs.celeryq.dev/en/stable/django/first-steps-with-django.html; celery._state: "Shared tasks
... are created by adding callbacks" to every app's finalizers; `current_app` falls back to the default
app, which tasks/celery.py sets, in threads the worker did not start).

What the tasks import of the router: router.store (Redis: pending follow-ups, deletions, counters,
own numbers, the broker), router.settings, router.logs and router.twilio_rest; never the web tier.
"""
from __future__ import annotations

from celery import Celery, current_app

from router.settings import Settings
from router.store.broker import broker_config

# The app's Settings (settings_of): an attribute of the app, not a key of its conf, which `celery report`
# and `celery inspect conf` print (REDIS_URL's password with it).
SETTINGS = "helpline_settings"
TASK_MODULES = ["tasks.followup", "tasks.history", "tasks.health"]


def create_celery(settings: Settings) -> Celery:
    """The Celery app for these settings: the broker on settings.redis_url (router/store/broker.py) and
    beat's schedule. Building it connects to nothing."""
    celery = Celery("tasks", include=TASK_MODULES, task_cls="tasks.quiet_task:QuietTask", set_as_current=False)
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        result_backend=None,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        beat_schedule={
            "dispatch-due-followups": {"task": "tasks.followup.dispatch_due",
                                       "schedule": settings.followup_dispatch_seconds},
            "sweep-history": {"task": "tasks.history.sweep", "schedule": settings.history_sweep_seconds},
            # Deletions are drained when the web tier kicks a drain and again while retries wait; beat's
            # drain is only the safety net for a kick that was lost (e.g. the broker refused it).
            "drain-deletions": {"task": "tasks.history.drain_deletions", "schedule": settings.deletion_drain_seconds},
            "heartbeat": {"task": "tasks.health.heartbeat", "schedule": settings.heartbeat_seconds,
                          "options": {"expires": settings.heartbeat_seconds * 4}},
        },
        timezone="Europe/London",
        # beat's schedule is a pickle: kept only in a private folder (tasks/beat_schedule.py)
        beat_scheduler="tasks.beat_schedule:PrivateScheduler",
        # kombu's Redis transport with the fix that keeps a worker running through a Redis restart
        **broker_config(settings.redis_url, settings.celery_visibility_timeout),
    )
    if settings.beat_schedule is not None:
        celery.conf.beat_schedule_filename = str(settings.beat_schedule)
    setattr(celery, SETTINGS, settings)
    return celery


def settings_of(app: Celery | None = None) -> Settings:
    """The Settings the app running a task was built with (the current app: the worker's)."""
    settings = getattr(app or current_app, SETTINGS, None)
    if not isinstance(settings, Settings):
        raise RuntimeError("this Celery app was not built by tasks.create_celery(settings)")
    return settings


def budget_seconds(settings: Settings) -> float:
    """How long a dispatch or a drain works before handing over to a fresh task: so it neither outlives
    the broker's visibility timeout (which would hand a copy to another worker) nor keeps a worker
    process from other tasks."""
    return min(10.0, settings.celery_visibility_timeout / 2)
