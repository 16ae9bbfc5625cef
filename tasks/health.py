"""A heartbeat that proves beat and at least one worker are running, for on-call alerts.

Beat queues `tasks.health.heartbeat` every HEARTBEAT_SECONDS (15 s); whichever worker takes it writes
the time into `hr:heartbeat` (a timestamp, TTL a day). The web tier's /metrics shows it as
helpline_worker_heartbeat_timestamp_seconds, and deploy/alerts.yml fires when it stops moving: beat is
not queueing, or no worker is taking tasks (then helpline_celery_queue_length says which). The key
holds a time only.
"""
from __future__ import annotations

import time

from celery import shared_task

from tasks import settings_of
from tasks.process_local import worker_redis

HEARTBEAT_KEY = "hr:heartbeat"
HEARTBEAT_TTL_SECONDS = 24 * 3600


@shared_task(name="tasks.health.heartbeat", ignore_result=True, expires=60)
def heartbeat() -> None:
    """Record that a worker ran a task beat queued; an old copy (expired in the queue) is dropped."""
    worker_redis(settings_of()).set(HEARTBEAT_KEY, repr(time.time()), ex=HEARTBEAT_TTL_SECONDS)
