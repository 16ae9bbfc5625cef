"""Redis round trips a webhook costs the web tier, counted on a real redis-server with MONITOR.

Each round trip costs the web tier ~0.1 ms of CPU in redis-py (docs/performance.md), so the store's
promise (issue 22) is counted, not assumed: a first text costs at most two (its arrival, with the
inbound text's deletion queued in the same script; the conversation saved), a retried text one, and
a call's greeting none. Commands a Lua script runs inside Redis are not round trips (MONITOR marks
them `lua`); the first request of a process (connections, the helpline's own number noted once an
hour, the first drain published) is made before counting.
"""
from __future__ import annotations

import threading

import pytest
import redis

from tests.support import ACCOUNT_SID, HELPLINE_NUMBER, new_sid, post_signed

START, STOP = "round-trips-start", "round-trips-stop"


class Monitor:
    """The commands clients send to Redis while it runs (a `with` block), scripts' own commands aside."""

    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.commands: list[str] = []
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        with self.client.monitor() as monitor:
            counting = False
            for entry in monitor.listen():
                command = entry["command"]
                if command == f"ECHO {START}":
                    counting = True
                    self._started.set()
                elif command == f"ECHO {STOP}":
                    return
                elif counting and entry.get("client_type") != "lua":
                    self.commands.append(command)

    def __enter__(self) -> "Monitor":
        self._thread.start()
        while not self._started.wait(0.05):
            self.client.echo(START)
        return self

    def __exit__(self, *exc) -> None:
        self.client.echo(STOP)
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "MONITOR did not stop"


def text(client, sender: str, body: str = "hello", sid: str | None = None):
    response = post_signed(client, "/sms", {"MessageSid": sid or new_sid("SM"), "AccountSid": ACCOUNT_SID,
                                            "From": sender, "To": HELPLINE_NUMBER, "Body": body, "NumMedia": "0"})
    assert response.status_code == 200 and b"<Message" in response.data
    return response


@pytest.fixture
def warm(client, redis_url):
    """The app after one text: connections made, its own number noted, a drain asked for (KICK_SECONDS)."""
    text(client, "+447400900001")
    return client


def test_a_first_text_costs_two_round_trips(warm, redis_url):
    with Monitor(redis_url) as seen:
        text(warm, "+447400900002")
    assert len(seen.commands) <= 2, seen.commands
    assert seen.commands[0].startswith("EVALSHA"), "the arrival, with its deletion queued"


def test_a_retried_text_costs_one_round_trip(warm, redis_url):
    sid = new_sid("SM")
    text(warm, "+447400900003", sid=sid)
    with Monitor(redis_url) as seen:
        text(warm, "+447400900003", sid=sid)
    assert len(seen.commands) == 1, seen.commands


def test_a_calls_greeting_costs_none(warm, redis_url):
    with Monitor(redis_url) as seen:
        response = post_signed(warm, "/voice", {"CallSid": new_sid("CA"), "AccountSid": ACCOUNT_SID,
                                                "From": "+447400900004", "To": HELPLINE_NUMBER,
                                                "CallStatus": "ringing", "Direction": "inbound"})
    assert response.status_code == 200 and b"<Gather" in response.data
    assert seen.commands == []
