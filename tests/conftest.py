"""Shared fixtures: a real redis-server process, app factories with a controlled clock."""
from __future__ import annotations

import os

# Twilio asks for a minute between a message's end and its DELETE (router/store/deletions.py); the tests' stand-in
# allows it at once unless a test sets its delete_grace, so deletions here are due at once. Set before
# router.store.deletions is imported; Celery workers and gunicorn started by tests inherit it.
os.environ.setdefault("DELETION_WAIT_SECONDS", "0")

import dataclasses  # noqa: E402
import functools
from datetime import datetime
from pathlib import Path

import pytest

from router.web.app import create_app
from router.dev.embedded_redis import RedisServer
from router.definition.hours import LONDON
from router.settings import REPO_ROOT, load_settings
from tests.support import ACCOUNT_SID, FOLLOWUP_SENDER, HELPLINE_NUMBER, METRICS_TOKEN, SECRETS_ENV, TOKEN

# Every process a test starts (CLI, gunicorn, Celery) inherits the keys, as a deployment gives them.
for _name, _value in SECRETS_ENV.items():
    os.environ.setdefault(_name, _value)

FLOWS = REPO_ROOT / "flows"
WEEKDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=LONDON)        # a Tuesday: every service open
WEEKNIGHT_3AM = datetime(2026, 11, 25, 3, 0, tzinfo=LONDON)        # only the 24-hour lines open
CHRISTMAS_3AM = datetime(2026, 12, 25, 3, 0, tzinfo=LONDON)
BOXING_DAY_SUBSTITUTE_NOON = datetime(2026, 12, 28, 12, 0, tzinfo=LONDON)  # a Monday bank holiday


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    import redis

    if not redis_server.is_running():
        redis_server.start()
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


def make_settings(redis_url: str = "redis://127.0.0.1:1/0", **overrides):
    """A deployment as it must be on a real account: follow-ups from a neutral sender (the stand-in's
    Messaging Service), never from the helpline's own number."""
    settings = load_settings({
        "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "REDIS_URL": redis_url,
        "FLOWS_DIR": str(FLOWS), "FLOWS_WATCH_SECONDS": "0", "METRICS_TOKEN": METRICS_TOKEN, **SECRETS_ENV,
        "FOLLOWUP_SENDER": FOLLOWUP_SENDER, "HELPLINE_NUMBERS": HELPLINE_NUMBER,
        "DELETION_WAIT_SECONDS": "0"})  # the e2e tests delete at once (tests/test_real_account.py waits)
    return dataclasses.replace(settings, **overrides)


class Clock:
    """A clock a test can set: handed to create_app instead of the system time."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(WEEKDAY_NOON)


@pytest.fixture
def app_at(clock, redis_url):
    """app_at(time) -> a test client of the real app at that London time, on the real Redis."""

    def build(when: datetime | None = None, **overrides):
        if when is not None:
            clock.now = when
        return create_app(make_settings(redis_url, **overrides), clock=clock).test_client()

    return build


@pytest.fixture
def client(app_at):
    return app_at()


def copy_flows(tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "flows"
    shutil.copytree(FLOWS, target)
    return target


# ------------------------------------------------------------------ markers and pytest-xdist
# `e2e` is found, not listed: a test module that starts processes imports subprocess, pty or the
# process helpers (tests/processes.py, tests/sentinels.py). `slow` is measured: modules whose tests take
# seconds each in-process (whole-flow validation, Hypothesis, Redis paused). `make test-quick` runs
# `-m "not e2e and not slow"`; a module renamed or added is simply in the quick run until listed here.
SLOW_MODULES = {
    "test_caller_journey", "test_cli", "test_diversions", "test_flowfile", "test_followup_sender",
    "test_fuzz_webhooks", "test_lint", "test_release_signing", "test_sms", "test_texts_as_typed", "test_values",
    "test_validation",  # test_lint.py once the cli branch has renamed it
}
STARTS_PROCESSES = ("import subprocess", "from subprocess", "import pty", "tests.processes", "tests.sentinels")


@functools.lru_cache(maxsize=None)
def _starts_processes(path: str) -> bool:
    source = Path(path).read_text()
    return any(needle in source for needle in STARTS_PROCESSES)


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = getattr(item, "module", None)
        if module is None:
            continue
        if _starts_processes(module.__file__):
            item.add_marker(pytest.mark.e2e)
        if module.__name__.rpartition(".")[2] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        # Under `pytest -n N --dist loadgroup` (make test), tests of a module that shares a fixture
        # between its tests (scope module or session, e.g. one `make run` for all of test_make_run)
        # stay on one xdist worker, so the fixture is built once; every other test goes where there is room.
        fixture_defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        if any(d.scope in ("module", "package") and d.baseid == item.nodeid.split("::")[0]
               for defs in fixture_defs.values() for d in defs):
            item.add_marker(pytest.mark.xdist_group(module.__name__))
