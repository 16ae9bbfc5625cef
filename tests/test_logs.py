"""Logs: the last-resort number filter, and correlation ids keyed by the deployment's secret."""
from __future__ import annotations

import dataclasses
import io
import logging

import pytest

from router import logs
from router.web.app import create_app
from tests.conftest import make_settings

SHAPES = ["+447400123555", "+44 7400 123555", "%2B447400123555", "%2b447400123555", "07400 123555",
          "07400123555", "(020) 7123 4567", "447400123555", "00447400123555", "+1 (415) 555-0100"]
LEFT_ALONE = ["CA00000000000000000000000000000001", "2026-12-01T10:50:47.123Z", "took 0.0123456789 s",
              "correlation 0123456789ab", "error 20404, HTTP 404", "SM0123456789abcdef0123456789abcdef"]


@pytest.mark.parametrize("shape", SHAPES)
def test_anything_shaped_like_a_number_is_redacted(shape):
    assert logs.redact(f"To={shape}&From=x") == f"To={logs.REDACTED}&From=x"


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_sids_times_and_codes_are_left_alone(text):
    assert logs.redact(text) == text


def logged(formatter: logging.Formatter, emit) -> str:
    """What a handler with this formatter, under logs.protect, writes for the records `emit` logs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logs.protect(handler)
    logger = logging.getLogger("tests.logs.capture")
    logger.addHandler(handler)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


@pytest.mark.parametrize("formatter", [logging.Formatter("%(message)s"), logs.JsonFormatter()])
def test_the_filter_redacts_arguments_and_exception_text_under_any_formatter(formatter):
    def emit(logger):
        logger.warning("sending to %s failed", "+447400123555")
        try:
            raise ConnectionError("HTTPConnectionPool: Messages.json?To=%2B447400123555 refused")
        except ConnectionError:
            logger.exception("raised unexpected: %r", ConnectionError("To=%2B447400123555"))

    text = logged(formatter, emit)
    assert "7400123555" not in text and text.count(logs.REDACTED) >= 2, text


def test_every_handler_of_every_logger_is_protected_after_configure():
    gunicorn_like = logging.getLogger("tests.logs.gunicorn.error")
    handler = logging.StreamHandler(io.StringIO())
    gunicorn_like.addHandler(handler)
    try:
        logs.configure()
        assert any(isinstance(f, logs.RedactNumbers) for f in handler.filters)
        assert all(any(isinstance(f, logs.RedactNumbers) for f in h.filters) for h in logging.getLogger().handlers)
    finally:
        gunicorn_like.removeHandler(handler)


def test_correlation_ids_are_keyed_by_the_deployments_secret(redis_url):
    sid = "CA" + "7" * 32
    create_app(make_settings(redis_url))
    ours = logs.correlation_for(sid)
    assert ours == logs.correlation_for(sid), "the same id for the same sid"
    create_app(dataclasses.replace(make_settings(redis_url),
                                   state_secrets=(b"another-deployments-state-secret-0123456789",)))
    theirs = logs.correlation_for(sid)
    assert theirs != ours, "another secret, another id: the id cannot be worked out from the sid alone"
    import hashlib
    import hmac

    public = hmac.new(b"helpline-router/correlation", sid.encode(), hashlib.sha256).hexdigest()[:12]
    assert public not in {ours, theirs}, "not the old fixed public key"


def test_a_worker_process_derives_the_same_ids_as_the_web_tier(redis_url):
    """Loading tasks.celery (what every worker and beat does: `celery -A tasks`) sets the key from the same settings, so a
    deletion logs under the id of the webhook that asked for it."""
    import os
    import subprocess
    import sys

    from router.settings import REPO_ROOT

    sid = "CA" + "8" * 32
    settings = make_settings(redis_url)
    logs.set_correlation_key(settings.correlation_key())
    web_id = logs.correlation_for(sid)
    env = dict(os.environ, TWILIO_AUTH_TOKEN=settings.auth_token, REDIS_URL=redis_url, PYTHONPATH=str(REPO_ROOT))
    env["STATE_HASH_SECRET"] = settings.state_key_secret().decode()
    worker_id = subprocess.run(
        [sys.executable, "-c", f"import tasks.celery; from router.logs import correlation_for; print(correlation_for({sid!r}))"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert worker_id == web_id


def test_gunicorns_own_log_lines_are_filtered_in_the_web_process(redis_url):
    """gunicorn logs a malformed request line or header as the client sent it ("Invalid request from
    ip=...: Invalid HTTP request line: '...'"): anyone can put a number in the web process's log that way. Run
    as the Procfile runs it, the line is written with the number redacted."""
    import os
    import socket

    from tests.processes import GunicornWeb, wait_until

    web = GunicornWeb(dict(os.environ, REDIS_URL=redis_url, TWILIO_AUTH_TOKEN="x")).start()
    try:
        for line in (b"+447400123555\r\n\r\n",
                     b"GET /x HTTP/1.1\r\nBad Header 07400 123555\r\n\r\n",
                     b"GET /voice?From=%2B447400123555\x00 HTTP/1.1\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", web.port), timeout=5) as sock:
                sock.sendall(line)
                sock.recv(1024)
        wait_until(lambda: web.log().count("Invalid request from ip") >= 3, 10, message="gunicorn's log lines")
    finally:
        web.stop()
    assert "7400123555" not in web.log() and "7400 123555" not in web.log()
    assert logs.REDACTED in web.log()
