"""Our own code's cost per request, in process: CPU time and Redis round trips, ours minus bare.

    python bench/inprocess.py [--requests 1000] [--repeats 7]

Runs the same three signed requests as bench/web.py through Flask's test client (no gunicorn, no
sockets to the app), for the real app (on a throw-away Redis) and for bench/bare_app.py. The CPU time
per request is the minimum over `--repeats` rounds (the minimum is what is least disturbed by other
work on the machine), so "ours - bare" is a steady figure for what router/ adds per request even on a
busy machine, where wrk's throughput swings. Round trips count every command or pipeline sent by any
redis-py client in the process (the app's own and Celery's). A fourth row, sms-new, is a first text in
earnest: a new MessageSid from a new number each request. Writes bench/results/inprocess.json.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, SECRETS, TOKEN, report_header, signature, write_report  # noqa: E402
from bench.web import ENDPOINTS  # noqa: E402

BASE = "http://127.0.0.1:5000"


class RoundTrips:
    """Counts redis-py sends (one per command, one per pipeline) in this process."""

    def __init__(self):
        import redis.connection

        self.count = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def counting(conn, command, check_health=True):
            self.count += 1
            return original(conn, command, check_health)

        redis.connection.AbstractConnection.send_packed_command = counting


NEW_TEXTS = "sms-new"   # a first text in earnest: a new MessageSid from a new number each request


def signed_forms(name: str, count: int, tag: str):
    """The requests of one measurement, signed beforehand: the endpoint's own form every time, or for
    sms-new a new MessageSid and sender each time."""
    path, params, _ = ENDPOINTS["sms-first" if name == NEW_TEXTS else name]
    if name != NEW_TEXTS:
        headers = {"X-Twilio-Signature": signature(BASE + path, params)}
        return iter(lambda: (params, headers), None)
    forms = [dict(params, MessageSid=f"SM{tag}{n:031x}", SmsSid=f"SM{tag}{n:031x}", From=f"+4474{n:08d}")
             for n in range(count)]
    return iter([(form, {"X-Twilio-Signature": signature(BASE + path, form)}) for form in forms])


def measure(client, name: str, requests: int, repeats: int, trips: RoundTrips, tag: str = "0") -> dict:
    path, _, marker = ENDPOINTS["sms-first" if name == NEW_TEXTS else name]
    forms = signed_forms(name, 201 + requests * repeats, tag)

    def one():
        params, headers = next(forms)
        response = client.post(path, data=params, headers=headers, base_url=BASE)
        assert response.status_code == 200, response.data[:200]
        return response

    body = one().get_data(as_text=True)
    for _ in range(200):
        one()
    cpu, wall = [], []
    before = trips.count
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(requests):
            one()
        cpu.append((time.process_time() - c0) / requests)
        wall.append((time.perf_counter() - w0) / requests)
    return {"cpu_us_min": round(1e6 * min(cpu), 1), "cpu_us_median": round(1e6 * statistics.median(cpu), 1),
            "wall_us_min": round(1e6 * min(wall), 1),
            "redis_round_trips_per_request": round((trips.count - before) / (requests * repeats), 2),
            "answer_ok": marker in body}


def flows_without_reply_cap(workdir: Path) -> Path:
    """The shipped flows with everyone's replies a minute (config.yaml `limits: replies_per_minute`)
    lifted: sms-new sends thousands of first texts a minute, and past the cap each gets only the 999
    advice, a shorter path than a first text's."""
    import yaml

    folder = workdir / "flows"
    shutil.copytree(Path(__file__).resolve().parent.parent / "flows", folder)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config.setdefault("limits", {}).update(replies_per_minute=100_000)  # the most config.yaml allows
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=Path, default=RESULTS / "inprocess.json")
    args = parser.parse_args(argv)

    from router.dev.embedded_redis import RedisServer

    workdir = Path(tempfile.mkdtemp(prefix="bench-inprocess-"))
    server = RedisServer(workdir / "redis", persist=False).start()
    for key in [k for k in os.environ if k.startswith(("TWILIO_", "PROMETHEUS_", "PUBLIC_BASE_URL"))]:
        del os.environ[key]
    os.environ.update({"TWILIO_AUTH_TOKEN": TOKEN, "REDIS_URL": server.url, **SECRETS,
                       "FLOWS_DIR": str(flows_without_reply_cap(workdir))})
    trips = RoundTrips()
    results = {}
    try:
        import logging

        from bench.bare_app import create_app as bare_app
        from router.web.app import create_app

        ours = create_app().test_client()
        logging.getLogger().setLevel(logging.WARNING)  # the app's INFO lines are not per request anyway
        bare = bare_app().test_client()
        for name in [*ENDPOINTS, NEW_TEXTS]:
            row = {"ours": measure(ours, name, args.requests, args.repeats, trips, "a"),
                   "bare": measure(bare, name, args.requests, args.repeats, trips, "b")}
            row["ours_minus_bare_cpu_us"] = round(row["ours"]["cpu_us_min"] - row["bare"]["cpu_us_min"], 1)
            results[name] = row
            print(f"{name:<15} ours {row['ours']['cpu_us_min']:7.1f} us CPU/request "
                  f"(median {row['ours']['cpu_us_median']:7.1f}), bare {row['bare']['cpu_us_min']:6.1f} us, "
                  f"ours - bare {row['ours_minus_bare_cpu_us']:7.1f} us, "
                  f"{row['ours']['redis_round_trips_per_request']} Redis round trips/request", flush=True)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report = {**report_header("inprocess"), "requests": args.requests,
              "repeats": args.repeats, "results": results}
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
