"""Structured logs: one line of JSON per event, with a correlation id that is not derived from a number,
and a last-resort filter that takes anything shaped like a phone number out of every line.

The id is a keyed hash of the CallSid or MessageSid, so every step of one call (and the worker's
deletion of its record) can be followed through the logs without the logs saying who called. Its key
comes from the deployment's secret (Settings.correlation_key, set by create_app and by the Celery app),
so someone who knows a CallSid cannot work out which lines are that call's; a process that was never
given the key uses a random one of its own. Used by the web tier and the Celery workers alike (no Flask
here).

The filter is the last line of defence, not the first: code never logs a number or an exception's text
(which can quote a URL with one, e.g. `Messages.json?To=%2B44...`); whatever slips through anyway, in any
process (web, worker, beat, gunicorn's own loggers), is redacted before a handler writes it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import traceback
import uuid
from contextvars import ContextVar

CORRELATION: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_key = secrets.token_bytes(32)  # until set_correlation_key: random, so never a key anyone knows

REDACTED = "[number]"
_SEP = r"[\s\-.()/]*"
# E.164 or international with a plus, URL-encoded plus or 00 (+44 7400 123555, %2B447400123555,
# 00447400123555); UK national (07400 123555, 0808 2000 247, (020) 7123 4567); 44 without its plus.
# Not inside a word or a longer run of digits, so sids, hashes and timestamps are left alone.
PHONE_SHAPED = re.compile(
    r"(?<![\w%.])(?:"
    rf"(?:\+|%2[bB]|\b00){_SEP}[1-9](?:{_SEP}\d){{6,14}}"
    r"|\(?0\d(?:[\s\-()]*\d){8,9}"
    r"|44\d{9,10}"
    r")(?![\w])")


def redact(text: str) -> str:
    """`text` with anything shaped like a phone number replaced by [number]."""
    return PHONE_SHAPED.sub(REDACTED, text)


def set_correlation_key(key: bytes) -> None:
    """Use the deployment's key (Settings.correlation_key()) for correlation ids in this process."""
    global _key
    _key = key


def correlation_for(sid: str | None) -> str:
    """The same short id for the same Twilio sid in every process of a deployment; random without a sid."""
    if not sid:
        return uuid.uuid4().hex[:12]
    return hmac.new(_key, sid.encode(), hashlib.sha256).hexdigest()[:12]


class RedactNumbers(logging.Filter):
    """On a handler: the message, its arguments and any exception text, with numbers redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the template only, never the arguments
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactNumbers()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        correlation = CORRELATION.get()
        if correlation:
            entry["correlation_id"] = correlation
        if record.exc_info:
            # The type and where, never the exception's message: it could quote a number or a text.
            entry["error"] = record.exc_info[0].__name__ if record.exc_info[0] else "unknown"
            entry["trace"] = redact("".join(traceback.format_tb(record.exc_info[2])))
        return json.dumps(entry, ensure_ascii=False)


def protect(handler: logging.Handler) -> None:
    """Put the redaction filter on a handler (once)."""
    if _FILTER not in handler.filters:
        handler.addFilter(_FILTER)


def protect_all() -> None:
    """The filter on every handler of every logger that exists now (root, gunicorn's, Celery's ...):
    a filter on a logger would miss records that its children propagate, one on a handler does not."""
    loggers = [logging.getLogger()] + [logger for logger in logging.root.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            protect(handler)


def use_json(handler: logging.Handler) -> None:
    handler.setFormatter(JsonFormatter())
    protect(handler)


def configure(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        use_json(handler)
        root.addHandler(handler)
        root.setLevel(level)
    protect_all()
