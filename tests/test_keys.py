"""The keys are explicit (issue 21): the number-hashing and sealing keys were silently derived from the
auth token, so a token rotation made STOP cancel nothing while the worker could still send. Now web and
worker refuse to start without STATE_HASH_SECRET and FOLLOWUP_ENCRYPTION_KEY (make run makes its own),
and each takes a comma-separated list for a rotation (tests/test_pending.py: old keys still read)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from router.web.app import create_app
from router.settings import MissingSecret, REPO_ROOT, load_settings
from tests.support import SECRETS_ENV, TOKEN

BASE = {"TWILIO_AUTH_TOKEN": TOKEN, "REDIS_URL": "redis://127.0.0.1:1/0", "FLOWS_WATCH_SECONDS": "0"}


@pytest.mark.parametrize("missing", ["STATE_HASH_SECRET", "FOLLOWUP_ENCRYPTION_KEY"])
def test_the_web_process_refuses_to_start_without_a_key(missing):
    env = dict(BASE, **SECRETS_ENV)
    env.pop(missing)
    with pytest.raises(MissingSecret, match=missing):
        create_app(load_settings(env))
    with pytest.raises(MissingSecret, match="at least 32"):
        create_app(load_settings(dict(env, **{missing: "short"})))


def test_nothing_is_derived_from_the_auth_token():
    settings = load_settings(BASE)
    for method in (settings.state_key_secret, settings.followup_key, settings.correlation_key):
        with pytest.raises(MissingSecret):
            method()


def test_rotation_lists_write_with_the_first_and_read_with_all():
    settings = load_settings(dict(BASE, STATE_HASH_SECRET="n" * 32 + ", " + "o" * 32,
                                  FOLLOWUP_ENCRYPTION_KEY="k" * 40))
    assert settings.state_key_secret() == b"n" * 32 and settings.state_key_secrets() == (b"n" * 32, b"o" * 32)
    assert settings.followup_keys() == (b"k" * 40,)
    settings.require_secrets()
    assert "n" * 32 not in repr(settings) and "k" * 40 not in repr(settings)


def test_the_worker_refuses_to_start_without_the_keys():
    env = {k: v for k, v in os.environ.items() if k not in SECRETS_ENV}
    result = subprocess.run([sys.executable, "-c", "import tasks.celery"], cwd=REPO_ROOT, env=dict(env, **BASE),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "STATE_HASH_SECRET is not set" in result.stderr
