"""The worker survives the broker going away: Redis killed (-9) and started again ten times in a row
while follow-ups and deletions are in flight. The worker that ran before is the one running after (same
PID: nothing restarted it), it reconnected each time by itself, and every follow-up asked for was sent
exactly once and deleted. tests/test_broker_reconnect.py reproduces, at the transport level, the kombu
crash that used to end the worker here.
"""
from __future__ import annotations

import pytest

from router.settings import Settings
from tasks import create_celery
from tests.processes import CeleryBeat, stop_together, wait_until
from tests.support import HELPLINE_NUMBER, post_signed
from tests.test_faults_under_load import (build_stack, mobile, persistent_redis,  # noqa: F401 (fixture)
                                          wait_aof_written)

ROUNDS = 10
PER_ROUND = 2


@pytest.mark.timeout(240)
def test_the_worker_rides_out_ten_redis_restarts_and_sends_every_follow_up_once(persistent_redis, tmp_path):
    stack = build_stack(persistent_redis.url)
    beat = CeleryBeat(dict(stack.worker.env, FOLLOWUP_DISPATCH_SECONDS="1"), schedule_file=str(tmp_path / "beat"))
    numbers: list[str] = []
    texts: list[str] = []
    try:
        stack.worker.start()
        beat.start()
        pid = stack.worker.process.pid
        for round_ in range(ROUNDS):
            connected = stack.worker.log().count("Connected to")
            # this round's sends are acted on by Twilio at once but answered only after the kill
            stack.standin.slow("POST", r"/Messages\.json$", seconds=1.0, count=PER_ROUND)
            before = len(stack.outbound())
            for n in range(PER_ROUND):
                numbers.append(mobile(100 + round_ * PER_ROUND + n))
                stack.followup_now(numbers[-1])
            sid = stack.standin.add_inbound_message(numbers[-1], HELPLINE_NUMBER, "hello")
            post_signed(stack.client, "/sms", {"MessageSid": sid, "From": numbers[-1], "To": HELPLINE_NUMBER,
                                               "Body": "hello"}, base=stack.web.url)
            texts.append(sid)
            wait_until(lambda: len(stack.outbound()) > before, 20, message=f"a send in flight (round {round_})")
            # What Redis acknowledged is in its append-only file before the kill: on a busy disk Redis
            # may postpone that write (appendfsync everysec), and a kill -9 then loses the last second,
            # which no worker could send (docs/deployment.md, Redis persistence).
            wait_aof_written(stack.redis())
            persistent_redis.stop(kill=True)
            persistent_redis.start()                    # same port, same data folder
            wait_until(lambda: stack.worker.log().count("Connected to") > connected
                       or stack.worker.process.poll() is not None, 30,
                       interval=0.05, message=f"the worker to reconnect (round {round_})")
            assert stack.worker.process.poll() is None, stack.worker.log()[-4000:]

        def missing() -> dict:
            sent = stack.outbound()
            return {k: v for k, v in {
                "pending": stack.pending(), "unsent": len(set(numbers) - {m["to"] for m in sent}),
                "undeleted sends": sum(1 for m in sent if not m["deleted"]),
                "undeleted texts": len(set(texts) - set(stack.standin.deleted_sids))}.items() if v}

        def wait_for(done, timeout: float, message: str) -> None:
            try:
                wait_until(done, timeout, interval=0.2, message=message)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; still {missing()}") from None

        wait_for(lambda: not {k for k in missing() if k in ("pending", "unsent")}, 120, "every follow-up sent")
        # A status callback that reached the web tier while Redis was down could not queue its deletion;
        # beat's sweep finds such messages once they are 5 minutes old. Run that sweep now instead.
        try:
            wait_until(lambda: not missing(), 20, interval=0.2)
        except AssertionError:
            create_celery(Settings(redis_url=stack.redis_url)).send_task("tasks.history.sweep", kwargs={"min_age_seconds": 0})
        wait_for(lambda: not missing(), 60, "every follow-up and text deleted")
        assert stack.worker.process.poll() is None and stack.worker.process.pid == pid, "the same worker process"
        assert "Unrecoverable error" not in stack.worker.log()
        per_number = {n: sum(1 for m in stack.outbound() if m["to"] == n) for n in numbers}
        assert {n: c for n, c in per_number.items() if c != 1} == {}, "one text per number"
    finally:
        stop_together(beat, stack.worker)
        stack.web.stop()
        stack.standin.stop()
