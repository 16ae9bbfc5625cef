"""The worker's and beat's entry point: `celery -A tasks worker|beat` (the Procfile) loads this module.

Celery's find_app, given the package `tasks` without an `app`, imports `tasks.celery` and takes its
`app` (celery/app/utils.py, find_app). Importing this module is the one place the Celery processes read
the environment (router.settings.load_settings) and set process-wide state: the correlation key for
log lines, and the signals that make every log line JSON through the number filter. Nothing else
imports it; tests build their own apps with tasks.create_celery(settings).
"""
from __future__ import annotations

from celery import signals

from router import logs
from router.settings import load_settings
from router.store import counters
from tasks import create_celery

settings = load_settings()
# the web tier's ids, from the deployment's secret (refuses to start without STATE_HASH_SECRET)
logs.set_correlation_key(settings.correlation_key())
app = create_celery(settings)
app.set_default()   # the app of every thread of this process, the tasks' `current_app`
app.set_current()
# the workers' counters (router/store/counters.py): on this Redis, a client of their own made at first use
counters.configure(settings.redis_url)


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
