"""Scaling out on one machine: two web processes (gunicorn, run from the Procfile's web line, on two
ports) and two Celery workers against one Redis and the Twilio stand-in, all on 127.0.0.1.

As behind a load balancer without sticky sessions, every step of a call and of a text conversation
goes to the other web process than the step before, and it works: where a caller is lives in the URL,
where a texter is lives in Redis. Both processes have the same PUBLIC_BASE_URL (here web B's address,
as it would be the balancer's), so Twilio signs that URL whichever process answers, and the status
callbacks of a follow-up asked for on web A arrive at web B: exactly one text, then deleted.
"""
from __future__ import annotations

import re

import pytest
import redis
import requests

from router.dev.embedded_redis import free_port
from tests.processes import (CeleryWorker, GunicornWeb, RoundRobinClient, start_together, stop_together, wait_until,
                             worker_env)
from tests.support import ACCOUNT_SID, METRICS_AUTH, MOBILE, TOKEN, Call, Texter, post_signed
from tests.twilio_standin import TwilioStandin

TEXTER = "+447400654321"


@pytest.fixture
def cluster(redis_url, tmp_path):
    standin = TwilioStandin(account_sid=ACCOUNT_SID, auth_token=TOKEN, step_delay=0.02).start()
    port_a, port_b = free_port(), free_port()
    public = f"http://127.0.0.1:{port_b}"

    def env(name: str) -> dict:
        folder = tmp_path / f"prometheus-{name}"
        folder.mkdir()
        return worker_env(redis_url, standin, PUBLIC_BASE_URL=public, WEB_CONCURRENCY="2",
                          PROMETHEUS_MULTIPROC_DIR=str(folder))

    web_a, web_b = GunicornWeb(env("a"), port=port_a), GunicornWeb(env("b"), port=port_b)
    workers = [CeleryWorker(worker_env(redis_url, standin), name=name) for name in ("w1", "w2")]
    try:
        start_together(web_a, web_b, *workers)
        yield standin, web_a, web_b, workers, redis.Redis.from_url(redis_url, decode_responses=True)
    finally:
        stop_together(web_a, web_b, *workers)
        standin.stop()


def alternates(served, first: str, second: str) -> bool:
    bases = [base for base, _, _ in served]
    return all(base == (first if i % 2 == 0 else second) for i, base in enumerate(bases))


def test_calls_texts_and_follow_ups_work_across_two_web_processes_and_two_workers(cluster):
    standin, web_a, web_b, workers, r = cluster
    public = web_b.url

    # --- a call whose steps alternate A, B, A, B, A: the last one (the yes to a text now) on A
    client = call_client = RoundRobinClient([web_a.url, web_b.url])
    call = Call(client, caller=MOBILE, base=public).start().press("1")
    assert call.dialled == ["+448082000247"]
    call.dial_ends("completed").press("2")                  # yes, it is safe to text (asked once)
    assert "For a text now, press 1" in call.text()
    call.press("1")                                         # a text now
    assert call.hung_up and "text you now" in call.text()
    assert len(client.served) == 5 and alternates(client.served, web_a.url, web_b.url), client.served
    assert client.served[-1][0] == web_a.url and all(status == 200 for _, _, status in client.served)

    # --- its follow-up: asked for on A, sent by a worker, status callbacks to B, deleted
    (message,) = wait_until(lambda: [m for m in standin.sent_messages() if m["to"] == MOBILE],
                            message="the follow-up text")
    assert message["status_callback"].startswith(f"{public}/sms/status?f=")  # names its follow-up
    wait_until(lambda: message["sid"] in standin.deleted_sids, 20, message="the text's deletion")
    callbacks = [c for c in standin.callback_log if c["message_sid"] == message["sid"]]
    assert callbacks and all(c["url"].startswith(web_b.url) and c["ok"] for c in callbacks), callbacks
    assert len([m for m in standin.sent_messages() if m["to"] == MOBILE]) == 1
    wait_until(lambda: r.zcard("hr:fu-due") == 0, message="the follow-up to be finished")

    # --- a text conversation whose replies alternate A, B, A, B, A: where the texter is lives in Redis
    client = RoundRobinClient([web_a.url, web_b.url])
    texter = Texter(client, sender=TEXTER, base=public)
    assert "999" in texter.send("hi")                                  # A: advice and menu
    assert "0808 801 0327" in texter.send("2")                         # B: remembers the menu
    assert texter.send("8") != texter.replies[-2]                      # A: remembers the service
    assert "about an hour" in texter.send("1")                         # B: a text later
    assert r.zcard("hr:fu-due") == 1
    assert texter.send("STOP").startswith("OK, we will not text this phone.")  # A: cancels what B stored
    assert r.zcard("hr:fu-due") == 0 and not list(r.scan_iter("hr:fu:*"))
    assert alternates(client.served, web_a.url, web_b.url) and len(client.served) == 5

    # --- a request signed for any other URL than the public one is refused by both
    for _ in (web_a, web_b):  # the round-robin client posts to each in turn, signed for web A's own URL
        assert post_signed(client, "/voice", call.params(), base=web_a.url).status_code == 403

    # --- each web process's /metrics adds up all its gunicorn workers (PROMETHEUS_MULTIPROC_DIR)
    served = call_client.served + client.served
    for web in (web_a, web_b):
        expected = sum(1 for base, _, _ in served if base == web.url)
        expected += sum(1 for c in standin.callback_log if c["url"].startswith(web.url))
        text = requests.get(f"{web.url}/metrics", headers=METRICS_AUTH, timeout=10).text
        counts = re.findall(r'^helpline_webhook_seconds_count\{endpoint="[^"]+"\} (\S+)$', text, re.M)
        assert sum(float(c) for c in counts) == expected, (web.url, expected, counts)
        assert "helpline_worker_deletions" in text                    # the workers' counters, from Redis
