"""Structured logs: one line of JSON per event, with a per-call correlation id.

The id is a keyed hash of the CallSid or MessageSid (never of the number), so every step of one call
can be followed through the logs without the logs saying who called.
"""
from __future__ import annotations

import json
import logging
import time
import traceback

from flask import g, has_request_context


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        if has_request_context() and getattr(g, "correlation_id", None):
            entry["correlation_id"] = g.correlation_id
        if record.exc_info:
            # The type and where, never the exception's message: it could quote a number or a text.
            entry["error"] = record.exc_info[0].__name__ if record.exc_info[0] else "unknown"
            entry["trace"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(entry, ensure_ascii=False)


def configure(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
