"""Slow clients do not stop the web tier: 50 connections trickling their headers (or, after complete
headers, their body) a byte at a time, and /healthz and signed webhooks are still answered within a
second (the Procfile's web line, as run); then the slow ones are dropped: headers not complete within
gunicorn's keepalive time, a body not complete within REQUEST_BODY_SECONDS (router/web/body_deadline.py).

Before: two such sockets held both sync workers until gunicorn's WORKER TIMEOUT, and health checks
timed out. The latency bound here is a behaviour (answered at all, promptly), not a benchmark.
"""
from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import pytest
import requests

from tests.processes import GunicornWeb, wait_until, worker_env
from tests.support import ACCOUNT_SID, HELPLINE_NUMBER, MOBILE, TOKEN, signature

SLOW_CLIENTS = 50
PROMPT_SECONDS = 1.0


class Trickler:
    """Sockets that send a request line, then one header byte every `every` seconds, never finishing."""

    def __init__(self, port: int, count: int, every: float = 0.5,
                 opening: bytes = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: "):
        self.port, self.count, self.every, self.opening = port, count, every, opening
        self.sockets: list[socket.socket] = []
        self.bytes_sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Trickler":
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(self.opening)
            self.sockets.append(sock)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for sock in self.sockets:
                try:
                    sock.send(b"a")
                    self.bytes_sent += 1
                except OSError:
                    pass

    def still_open(self) -> int:
        """How many of the slow connections the server has not closed."""
        open_ = 0
        for sock in self.sockets:
            sock.setblocking(False)
            try:
                while sock.recv(65536):  # an answer (408) before the close is read past
                    pass
            except BlockingIOError:
                open_ += 1
            except OSError:
                pass
        return open_

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def web(redis_url):
    # The web tier never calls Twilio's REST API: only the credentials matter (the token signs webhooks).
    twilio = SimpleNamespace(account_sid=ACCOUNT_SID, auth_token=TOKEN, url="http://127.0.0.1:9")
    env = worker_env(redis_url, twilio, WEB_CONCURRENCY="2", PUBLIC_BASE_URL="http://helpline.test")
    server = GunicornWeb(env).start()
    yield server
    server.stop()


def timed(call) -> tuple[float, requests.Response]:
    started = time.monotonic()
    response = call()
    return time.monotonic() - started, response


SLOW_BODY = (b"POST /voice HTTP/1.1\r\nHost: helpline.test\r\nContent-Type: application/x-www-form-urlencoded\r\n"
             b"Content-Length: 2000\r\n\r\nCallSid=")


@pytest.mark.parametrize("opening", [None, SLOW_BODY], ids=["slow headers", "slow body"])
def test_fifty_slow_clients_do_not_stop_health_checks_or_webhooks(web, opening):
    """Issue 21, finding 5 for the body: headers had a deadline, bodies none, and 2,100 connections
    sending a body a byte every 3 s made /healthz time out. Now every slow one is dropped in time."""
    params = {"CallSid": "CA" + "5" * 32, "AccountSid": ACCOUNT_SID, "From": MOBILE, "To": HELPLINE_NUMBER,
              "CallStatus": "ringing", "Direction": "inbound"}
    headers = {"X-Twilio-Signature": signature("http://helpline.test/voice", params)}
    slow = (Trickler(web.port, SLOW_CLIENTS, opening=opening) if opening else Trickler(web.port, SLOW_CLIENTS)).start()
    try:
        wait_until(lambda: slow.bytes_sent >= 3 * SLOW_CLIENTS, 10, message="the slow clients to be trickling")
        timings = []
        for _ in range(5):
            seconds, health = timed(lambda: requests.get(web.url + "/healthz", timeout=PROMPT_SECONDS * 3))
            assert health.status_code == 200
            timings.append(("healthz", seconds))
            seconds, voice = timed(lambda: requests.post(web.url + "/voice", data=params, headers=headers,
                                                         timeout=PROMPT_SECONDS * 3))
            assert voice.status_code == 200 and b"<Gather" in voice.content
            timings.append(("voice", seconds))
        assert all(seconds < PROMPT_SECONDS for _, seconds in timings), timings
        # and they are not kept for ever: headers not complete within keepalive (5 s), or a body not
        # complete within REQUEST_BODY_SECONDS (5 s) after them, are dropped, while still trickling
        wait_until(lambda: slow.still_open() == 0, 20, interval=0.2, message="the slow clients to be dropped")
        assert slow.bytes_sent < 20 * 2 * SLOW_CLIENTS, "dropped while trickling, not after sending it all"
    finally:
        slow.stop()
    assert "WORKER TIMEOUT" not in web.log()
