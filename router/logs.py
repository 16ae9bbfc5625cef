"""Structured logs: one line of JSON per event, with a correlation id that is not derived from a number.

The id is a keyed hash of the CallSid or MessageSid, so every step of one call (and the worker's
deletion of its record) can be followed through the logs without the logs saying who called. Used by
the web tier and the Celery workers alike (no Flask here).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import traceback
import uuid
from contextvars import ContextVar

CORRELATION: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_KEY = b"helpline-router/correlation"


def correlation_for(sid: str | None) -> str:
    """The same short id for the same Twilio sid in every process; random when there is no sid."""
    if not sid:
        return uuid.uuid4().hex[:12]
    return hmac.new(_KEY, sid.encode(), hashlib.sha256).hexdigest()[:12]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        correlation = CORRELATION.get()
        if correlation:
            entry["correlation_id"] = correlation
        if record.exc_info:
            # The type and where, never the exception's message: it could quote a number or a text.
            entry["error"] = record.exc_info[0].__name__ if record.exc_info[0] else "unknown"
            entry["trace"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(entry, ensure_ascii=False)


def use_json(handler: logging.Handler) -> None:
    handler.setFormatter(JsonFormatter())


def configure(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    use_json(handler)
    root.addHandler(handler)
    root.setLevel(level)
