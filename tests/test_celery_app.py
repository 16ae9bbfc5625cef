"""The Celery app is built from settings passed in (tasks.create_celery); importing the tasks does nothing
else; `celery -A tasks` finds the app the entry module (tasks/celery.py) builds from the environment."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from router.settings import REPO_ROOT, Settings
from tasks import create_celery, settings_of

TASKS = {"tasks.followup.dispatch_due", "tasks.followup.send_followup", "tasks.history.drain_deletions",
         "tasks.history.delete_message", "tasks.history.delete_call", "tasks.history.sweep",
         "tasks.health.heartbeat"}
# Every variable the workers' pace and the store's leases are read from (router/settings.py)
PACE = {"CELERY_VISIBILITY_TIMEOUT": "7", "FOLLOWUP_DISPATCH_SECONDS": "3", "HISTORY_SWEEP_SECONDS": "11",
        "DELETION_DRAIN_SECONDS": "5", "HEARTBEAT_SECONDS": "2", "TASK_RETRY_BASE_SECONDS": "0.25",
        "SENT_FINAL_AFTER_SECONDS": "9", "FOLLOWUP_LOCK_SECONDS": "4", "FOLLOWUP_LEASE_SECONDS": "8",
        "DELETION_WAIT_SECONDS": "6", "DELETION_LEASE_SECONDS": "3"}


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in {"STATE_HASH_SECRET", "FOLLOWUP_ENCRYPTION_KEY", "REDIS_URL"} and k not in PACE}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=dict(clean, PYTHONPATH=str(REPO_ROOT), **env),
                          capture_output=True, text=True, timeout=60)


def test_importing_the_tasks_reads_no_setting_builds_no_app_and_keeps_the_correlation_key():
    """Before: `import tasks` read the environment, built the app and reset the process's correlation key
    (so it failed without STATE_HASH_SECRET). Now it is a plain import, secrets or not."""
    code = """
import json, os
from celery import _state
from router import logs
logs.set_correlation_key(b"the web tier's key")
before = logs.correlation_for("CA" + "1" * 32)
import tasks, tasks.followup, tasks.history, tasks.health, tasks.beat_schedule, tasks.retry, tasks.quiet_task
print(json.dumps({"apps": sorted(app.main or "" for app in _state._get_active_apps()),
                  "same_key": logs.correlation_for("CA" + "1" * 32) == before,
                  "celery_module": "tasks.celery" in __import__("sys").modules}))
"""
    result = run(code)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen == {"apps": [], "same_key": True, "celery_module": False}, seen


def test_an_app_is_built_from_the_settings_given_and_carries_them():
    settings = Settings(redis_url="redis://127.0.0.1:1/3", celery_visibility_timeout=7.0, followup_dispatch_seconds=3.0,
                        history_sweep_seconds=11.0, deletion_drain_seconds=5.0, heartbeat_seconds=2.0)
    app = create_celery(settings)
    assert settings_of(app) is settings
    assert app.conf.broker_url == "redis://127.0.0.1:1/3"
    assert app.conf.broker_transport_options["visibility_timeout"] == 7.0
    schedule = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert schedule == {"tasks.followup.dispatch_due": 3.0, "tasks.history.sweep": 11.0,
                        "tasks.history.drain_deletions": 5.0, "tasks.health.heartbeat": 2.0}
    app.loader.import_default_modules()
    assert TASKS <= set(app.tasks), "every task is the app's own (shared_task), sent by name"
    secret = create_celery(Settings(redis_url="redis://:the-redis-password@127.0.0.1:1/0", auth_token="the-token"))
    shown = secret.conf.humanize(with_defaults=False, censored=True)   # what `celery report` prints
    assert "the-redis-password" not in shown and "the-token" not in shown
    other = create_celery(Settings(redis_url="redis://127.0.0.1:1/4"))
    assert settings_of(other).redis_url.endswith("/4") and settings_of(app).redis_url.endswith("/3"), \
        "two apps in one process keep their own settings"


def test_celery_dash_a_tasks_finds_the_app_built_from_the_environment():
    """What `celery -A tasks worker|beat` does (celery/app/utils.py find_app): the package has no `app`, so
    Celery takes `tasks.celery`'s, built from the environment, every pace variable read once into Settings."""
    code = """
import json
from celery.app.utils import find_app
from tasks import settings_of
app = find_app("tasks")
s = settings_of(app)
print(json.dumps({"module": type(app).__module__, "broker": app.conf.broker_url,
                  "visibility": app.conf.broker_transport_options["visibility_timeout"],
                  "pace": [s.celery_visibility_timeout, s.followup_dispatch_seconds, s.history_sweep_seconds,
                           s.deletion_drain_seconds, s.heartbeat_seconds, s.task_retry_base_seconds,
                           s.sent_final_after_seconds, s.followup_lock_seconds, s.followup_lease_seconds,
                           s.deletion_wait_seconds, s.deletion_lease_seconds]}))
"""
    result = run(code, STATE_HASH_SECRET="s" * 32, FOLLOWUP_ENCRYPTION_KEY="k" * 32,
                 REDIS_URL="redis://127.0.0.1:1/5", **PACE)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["broker"] == "redis://127.0.0.1:1/5" and seen["visibility"] == 7.0
    assert seen["pace"] == [7.0, 3.0, 11.0, 5.0, 2.0, 0.25, 9.0, 4, 8, 6.0, 3.0]

