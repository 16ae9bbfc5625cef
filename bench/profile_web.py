"""Where a web worker's time goes under load: py-spy samples the Procfile's gunicorn while wrk loads it.

    pip install py-spy        # sampling profiler; needs ptrace (root, or CAP_SYS_PTRACE)
    python bench/profile_web.py [--duration 8] [--connections 16]

Same set-up as bench/web.py (throw-away Redis, the Procfile's web: line on 127.0.0.1, signed requests,
the same three endpoints). For each endpoint, py-spy records both workers while wrk runs, and the
samples are summed into the parts of a request (inclusive: a part nested in another counts in both).
Percentages are of the workers' busy samples; "ms/request" spreads the workers' measured CPU time
over the requests in proportion. Writes bench/results/profile.json (and, with --raw-dir, py-spy's raw
stacks in collapsed format for flamegraph tools).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, SECRETS, TOKEN, Gunicorn, report_header, write_report  # noqa: E402
from bench.web import ENDPOINTS, check_endpoint, run_wrk, write_script  # noqa: E402
from router.dev.embedded_redis import RedisServer  # noqa: E402

# (part, substrings any of which in a frame puts the sample in that part). Order is display order.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("whole request in the worker (gunicorn sync handle)", ("SyncWorker.handle (",)),
    ("  gunicorn: read + parse HTTP", ("gunicorn/http/",)),
    ("  gunicorn: access log line (when the command line asks for one)", ("Logger.access (gunicorn/glogging.py",)),
    ("  Flask/werkzeug: app + request/response plumbing", ("Flask.wsgi_app (",)),
    ("    signature check (router.web.signature.is_from_twilio)", ("is_from_twilio (router/web/signature.py",)),
    ("      HMAC-SHA1 over URL + params (RequestValidator)",
     ("RequestValidator.validate (", "RequestValidator.compute_signature (")),
    ("      form parsing (first touch of request.form)", ("_load_form_data (",)),
    ("    correlation id (HMAC of the sid)", ("_correlation_id (router/web/app.py", "correlation_for (router/logs.py")),
    ("    flow lookup (FlowStore.current)", ("FlowStore.current (",)),
    ("    phone checks (phonenumbers: can_receive_texts / normalise_sender)",
     ("can_receive_texts (router/definition/phone.py", "normalise_sender (router/definition/phone.py")),
    ("    flow engine (router.engine)", ("router/engine/__init__.py",)),
    ("    TwiML building (voice.render / sms.render)", ("render (router/web/voice.py", "render (router/web/sms.py")),
    ("      url_for inside render", ("url_for (flask/helpers.py",)),
    ("      twilio TwiML to_xml / ElementTree", ("to_xml (twilio/twiml/",)),
    ("    Redis: conversation state (router.store.conversations)", ("ConversationStore.", )),
    ("    Redis/Celery: queueing a task (Jobs._send -> send_task)", ("Jobs._send (router/web/jobs.py",)),
    ("    any redis-py call (all Redis round trips)", ("redis/client.py", "redis/commands/")),
    ("    prometheus_client (observe/inc)", ("prometheus_client/",)),
    ("  python logging module (mostly gunicorn's access log, if on)", ("logging/__init__.py",)),
]


def categorise(raw_path: Path) -> tuple[int, dict[str, int]]:
    """Sum samples per part over worker stacks (the master's are left out)."""
    busy, parts = 0, defaultdict(int)
    for line in raw_path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "SyncWorker.run (" not in stack:
            continue
        n = int(count)
        busy += n
        for name, needles in PARTS:
            if any(needle in stack for needle in needles):
                parts[name] += n
    return busy, dict(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--output", type=Path, default=RESULTS / "profile.json")
    parser.add_argument("--raw-dir", type=Path, default=None,
                        help="keep py-spy's raw stacks (collapsed format, for flamegraph tools) here")
    args = parser.parse_args(argv)
    if args.raw_dir:
        args.raw_dir.mkdir(parents=True, exist_ok=True)
    for tool in ("wrk", "py-spy"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install -y wrk; pip install py-spy)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    redis_server = RedisServer(workdir / "redis", persist=False).start()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "WEB_CONCURRENCY", "PROMETHEUS_", "GUNICORN_", "PUBLIC_BASE_URL"))}
    env.update({"TWILIO_AUTH_TOKEN": TOKEN, "REDIS_URL": redis_server.url, **SECRETS})
    server = Gunicorn("ours", env, None, workdir)
    report = {**report_header("profile"), "connections": args.connections, "endpoints": {}}
    try:
        server.start()
        for endpoint in [e for e in args.endpoints.split(",") if e]:
            check_endpoint(server, endpoint)
            script, url = write_script(workdir, server, endpoint)
            run_wrk(script, url, args.connections, 1, 2, server)  # warm-up
            raw = (args.raw_dir or workdir) / f"profile-{endpoint}.txt"
            spy = subprocess.Popen(
                ["py-spy", "record", "--pid", str(server.process.pid), "--subprocesses", "--format", "raw",
                 "--rate", str(args.rate), "--nonblocking", "--duration", str(int(args.duration)),
                 "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            load = run_wrk(script, url, args.connections, 1, args.duration, server)
            spy.wait(timeout=args.duration + 30)
            busy, parts = categorise(raw)
            per_request = load["server_cpu_ms_per_request"]
            rows = {name: {"share": round(parts.get(name, 0) / busy, 3) if busy else 0,
                           "ms_per_request": round(per_request * parts.get(name, 0) / busy, 3) if busy else 0}
                    for name, _ in PARTS}
            report["endpoints"][endpoint] = {"rps": load["rps"], "cpu_ms_per_request": per_request,
                                             "busy_samples": busy, "parts": rows}
            print(f"\n{endpoint} ({ENDPOINTS[endpoint][0]}): {load['rps']:.0f} rps at c={args.connections}, "
                  f"{per_request:.2f} ms CPU per request (gunicorn master + workers), {busy} busy samples")
            for name, row in rows.items():
                print(f"  {name:<72} {100 * row['share']:5.1f}%  {row['ms_per_request']:6.3f} ms")
    finally:
        server.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
