"""A floor under bench/bare_app.py: a plain WSGI callable, no Flask, answering bare_app's document.

`python bench/web.py --floor` serves it with the same gunicorn command line as the other two. It shows
what gunicorn's sync workers, the sockets and wrk cost by themselves on this machine, so a latency or
throughput target can be judged against what no Python web app served this way could beat.
"""
from __future__ import annotations

from bench.bare_app import DOCUMENT

BODY = DOCUMENT.encode()
HEADERS = [("Content-Type", "application/xml; charset=utf-8"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", list(HEADERS))
    return [BODY]


def create_app():
    return application
