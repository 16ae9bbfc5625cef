"""A deadline for the whole request, body included: a client gets REQUEST_BODY_SECONDS to send its body
after its headers, which gunicorn already bounds (keepalive, 5 s, router/web/gunicorn_conf.py).

Why: gunicorn bounds how long the request line and headers take, but not the body. 2,100 connections
sending a body a byte every 3 s held every gevent worker's connection slots (WEB_CONNECTIONS) for ever,
and `/healthz` timed out (issue 21, finding 5). Twilio sends a webhook's few hundred bytes at once, so
the body is read here, in full and before the app runs, within the deadline; a client that has not sent
it by then gets 408 and its connection is shut for reading, so gunicorn drops it at once instead of
waiting for the rest. The app then reads the body from memory.

The deadline is a gevent.Timeout, which interrupts a greenlet blocked on its socket: it applies in the
gevent workers the Procfile runs. Elsewhere (Flask's test client, a threaded test server) the body is
read the same way, without a deadline.
"""
from __future__ import annotations

import io
import logging
import socket

from router import metrics

log = logging.getLogger("router.web.app")


def _deadline(seconds: float):
    """A context that interrupts blocking reads after `seconds` (gevent), or None without gevent."""
    try:
        from gevent import Timeout
        from gevent.monkey import is_module_patched
    except ImportError:  # pragma: no cover - gevent is a dependency
        return None
    return Timeout(seconds) if is_module_patched("socket") else None


def _respond(start_response, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def read_body_within(wsgi_app, seconds: float, max_bytes: int):
    """`wsgi_app` with each request's body read in full within `seconds` (at most max_bytes + 1 read)."""

    def app(environ, start_response):
        length = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        wanted = int(length) if length.isdecimal() else 0
        if not chunked and (wanted == 0 or wanted > max_bytes):
            return wsgi_app(environ, start_response)  # nothing to wait for, or refused unread (413)
        deadline = _deadline(seconds)
        try:
            if deadline is not None:
                deadline.start()
            body = _read(environ["wsgi.input"], max_bytes + 1 if chunked else wanted)
        except BaseException as exc:  # gevent.Timeout is a BaseException
            if deadline is None or exc is not deadline:
                raise
            metrics.ERRORS.labels("slow_body").inc()
            _stop_reading(environ)
            return _respond(start_response, "408 Request Timeout", "Request body too slow\n")
        finally:
            if deadline is not None:
                deadline.close()
        if len(body) > max_bytes:
            return _respond(start_response, "413 Request Entity Too Large", "Request too large\n")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return wsgi_app(environ, start_response)

    return app


def _read(stream, limit: int) -> bytes:
    chunks, got = [], 0
    while got < limit:
        chunk = stream.read(min(65536, limit - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _stop_reading(environ) -> None:
    """The slow client's socket is shut for reading: gunicorn finds no more request on it and closes it,
    instead of draining the rest of the body first."""
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
