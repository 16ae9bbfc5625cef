"""What a deletion costs the web tier, queued each way the store could queue it (issue 22's choice).

    python bench/queue_choice.py [--ops 2000] [--repeats 5]

On a throw-away Redis, in this process, CPU time (time.process_time: this process only, so Redis'
own work is not counted) per deletion asked for by the web tier:

  celery-task      a Celery publish per deletion (`send_task("tasks.history.delete_message", ...)` on
                   the producer app the web tier uses): deletions as ordinary idempotent Celery tasks
  queue-add        the store's leased queue: one EVALSHA (scripts/deletion_add.lua), a drain published
                   only when none is asked for yet (here: never, the kick flag is held)
  with-arrival     the inbound text's deletion queued inside the arrival script (scripts/arrive.lua):
                   the arrival with a deletion minus the arrival without one
  round-trip-floor a PING: what any one round trip costs redis-py here

Each figure is the minimum over `--repeats` rounds of `--ops` operations. Writes
bench/results/queue_choice.json. Takes about half a minute.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, report_header, write_report  # noqa: E402


def per_op(fn, ops: int, repeats: int) -> float:
    """Minimum CPU microseconds per call of fn(i) over `repeats` rounds of `ops` calls."""
    best = float("inf")
    for round_ in range(repeats):
        start = time.process_time()
        for i in range(ops):
            fn(round_ * ops + i)
        best = min(best, (time.process_time() - start) / ops * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS / "queue_choice.json")
    args = parser.parse_args(argv)

    from router.dev.embedded_redis import RedisServer
    from router.store import keys
    from router.store.connection import make_redis
    from router.store.conversations import ConversationStore
    from router.store.deletions import PendingDeletions

    workdir = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    server = RedisServer(workdir / "redis", persist=False).start()
    try:
        os.environ.setdefault("STATE_HASH_SECRET", "bench-state-secret-" + "7" * 32)
        client = make_redis(server.url)
        queue = PendingDeletions(client)
        conversations = ConversationStore(client, b"k" * 32)

        # the web tier's producer (router/web/jobs.py) on the same Redis (a broker round trip or more)
        from router.settings import Settings
        from router.web.jobs import producer

        celery = producer(Settings(redis_url=server.url))

        def sid(i: int) -> str:
            return "SM" + f"{i:032x}"

        client.set(keys.DELETION_KICK, "1", ex=3600)   # a drain is asked for already: no publish in the loop
        results = {
            "round-trip-floor": per_op(lambda i: client.ping(), args.ops, args.repeats),
            "queue-add": per_op(lambda i: queue.add("message", sid(i), final_at=time.time()), args.ops, args.repeats),
            "celery-task": per_op(lambda i: celery.send_task("tasks.history.delete_message",
                                                             args=(sid(i), time.time()), retry=False),
                                  args.ops, args.repeats),
        }
        client.flushdb()
        client.set(keys.DELETION_KICK, "1", ex=3600)
        without = per_op(lambda i: conversations.arrive("", "+4474009" + f"{i % 100000:05d}"), args.ops, args.repeats)
        with_deletion = per_op(lambda i: conversations.arrive(sid(10**7 + i), "+4474009" + f"{i % 100000:05d}"),
                               args.ops, args.repeats)
        results["arrival-without-deletion"] = without
        results["arrival-with-deletion"] = with_deletion
        results["with-arrival"] = with_deletion - without
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    for name, micros in results.items():
        print(f"{name:<26} {micros:8.1f} µs of CPU per deletion")
    write_report(args.output, {**report_header("queue_choice"), "ops": args.ops, "repeats": args.repeats,
                               "cpu_us_per_op": {k: round(v, 1) for k, v in results.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
