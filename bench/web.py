"""Load the web tier as deployed and compare it with a bare Flask app under the same gunicorn.

    python bench/web.py [--duration 10] [--connections 1,16,64] [--threads 1]

Starts a throw-away Redis (router.dev.embedded_redis.RedisServer), then two gunicorns from the Procfile's
`web:` line (default WEB_CONCURRENCY, so 2 sync workers; bound to 127.0.0.1): the real app
(`router.web.app:create_app()`) and bench/bare_app.py (a constant TwiML document). Then, for each endpoint
and connection count, `wrk` (Debian package `wrk`) runs against ours and then against bare, back to
back, with signed requests whose X-Twilio-Signature is computed once (it depends only on URL + params):

  voice-greeting  POST /voice                       a call comes in
  voice-dial      POST /voice/key?at=main&lang=en   Digits=1: the 24-hour line, so always a <Dial>
  sms-first       POST /sms                         a first text (one MessageSid for every request:
                                                    a retried sid answers without advancing)

With `--floor`, a third gunicorn serves bench/wsgi_floor.py (a plain WSGI callable, no Flask): what
gunicorn, the sockets and wrk cost by themselves here.

Each cell runs `--repeats` times (ours, bare, ours, bare, ...) and reports the run with the highest
throughput of each app: on a shared machine the best run is the least disturbed one; every run is kept
in the JSON, with the 1-minute load average before the cell. Prints a table and writes
bench/results/web.json. Only 127.0.0.1 is ever targeted. Takes about 2 x 3 x 3 x repeats x duration
seconds plus warm-up (about 4 minutes with the defaults).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from bench.common import (ACCOUNT_SID, HELPLINE_NUMBER, MOBILE, RESULTS, SECRETS, TOKEN, Gunicorn,  # noqa: E402
                          form_body, package_versions, report_header, signature, web_command, write_report)
from router.dev.embedded_redis import RedisServer  # noqa: E402

CALL_SID = "CA" + "b" * 32
MESSAGE_SID = "SM" + "b" * 32

ENDPOINTS = {
    "voice-greeting": ("/voice", {
        "CallSid": CALL_SID, "AccountSid": ACCOUNT_SID, "From": MOBILE, "To": HELPLINE_NUMBER,
        "CallStatus": "ringing", "Direction": "inbound"}, "<Gather"),
    "voice-dial": ("/voice/key?at=main&lang=en", {
        "CallSid": CALL_SID, "AccountSid": ACCOUNT_SID, "From": MOBILE, "To": HELPLINE_NUMBER,
        "CallStatus": "in-progress", "Direction": "inbound", "Digits": "1"}, "<Dial"),
    "sms-first": ("/sms", {
        "MessageSid": MESSAGE_SID, "SmsSid": MESSAGE_SID, "AccountSid": ACCOUNT_SID, "From": MOBILE,
        "To": HELPLINE_NUMBER, "Body": "hi", "NumMedia": "0"}, "<Message"),
}

LUA = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["X-Twilio-Signature"] = {signature}
wrk.headers["User-Agent"] = "TwilioProxy/1.1"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, '
    .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "non_2xx": %d, '
    .. '"mean_us": %.1f, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout,
    e.status, latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"""


def lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_script(folder: Path, server: Gunicorn, name: str) -> tuple[Path, str]:
    path, params, _ = ENDPOINTS[name]
    url = server.url + path
    script = folder / f"{server.name}-{name}.lua"
    script.write_text(LUA.format(body=lua_string(form_body(params)),
                                 signature=lua_string(signature(url, params))))
    return script, url


def check_endpoint(server: Gunicorn, name: str) -> dict:
    """One signed request before loading: it must be 200 TwiML of the expected kind."""
    path, params, marker = ENDPOINTS[name]
    url = server.url + path
    response = requests.post(url, data=params, timeout=5,
                             headers={"X-Twilio-Signature": signature(url, params)})
    ok = response.status_code == 200 and (server.name != "ours" or marker in response.text)
    if not ok:
        raise SystemExit(f"{server.name} {name}: answered {response.status_code}: {response.text[:300]}")
    return {"status": response.status_code, "bytes": len(response.content)}


def run_wrk(script: Path, url: str, connections: int, threads: int, duration: float, server: Gunicorn) -> dict:
    threads = max(1, min(threads, connections))
    args = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s", "--timeout", "5s",
            "--latency", "-s", str(script), url]
    cpu_before = server.cpu_seconds()
    started = time.monotonic()
    out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60)
    wall = time.monotonic() - started
    cpu = server.cpu_seconds() - cpu_before
    line = next((row for row in out.stdout.splitlines() if row.startswith("BENCHJSON ")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({out.returncode}): {out.stderr}\n{out.stdout}")
    raw = json.loads(line[len("BENCHJSON "):])
    seconds = raw["duration_us"] / 1e6
    errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    return {
        "connections": connections, "wrk_threads": threads, "seconds": round(seconds, 2),
        "requests": raw["requests"], "rps": round(raw["requests"] / seconds, 1),
        "mean_ms": round(raw["mean_us"] / 1000, 2), "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2), "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2), "non_2xx": raw["non_2xx"], "socket_errors": errors,
        "server_cpu_ms_per_request": round(1000 * cpu / raw["requests"], 3) if raw["requests"] else None,
        "server_cpu_share": round(cpu / wall, 2),
    }


def table(results: list[dict], p99_target: float, ratio_target: float) -> str:
    head = (f"{'endpoint':<15} {'conns':>5} | {'ours rps':>9} {'bare rps':>9} {'ratio':>6} | "
            f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} | {'bare p50':>8} {'bare p99':>8} | "
            f"{'cpu ms/req':>10} {'bare':>5} | {'load':>4} | verdict")
    lines = [head, "-" * len(head)]
    for row in results:
        ours, bare = row["ours"], row["bare"]
        misses = []
        if row["ratio"] < ratio_target:
            misses.append(f"ratio<{ratio_target}")
        if row["connections"] == 64 and ours["p99_ms"] >= p99_target:
            misses.append(f"p99>={p99_target:g}ms")
        if ours["non_2xx"] or ours["socket_errors"]:
            misses.append(f"{ours['non_2xx']} non-2xx/{ours['socket_errors']} socket errors")
        lines.append(
            f"{row['endpoint']:<15} {row['connections']:>5} | {ours['rps']:>9.0f} {bare['rps']:>9.0f} "
            f"{row['ratio']:>6.2f} | {ours['p50_ms']:>7.2f} {ours['p99_ms']:>7.2f} {ours['max_ms']:>7.1f} | "
            f"{bare['p50_ms']:>8.2f} {bare['p99_ms']:>8.2f} | {ours['server_cpu_ms_per_request']:>10.2f} "
            f"{bare['server_cpu_ms_per_request']:>5.2f} | {row.get('loadavg_1m_before', 0):>4.1f} | "
            f"{'MISS ' + ', '.join(misses) if misses else 'ok'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run (default 6)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs per app and cell, best (highest throughput) reported (default 2)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per endpoint and app")
    parser.add_argument("--connections", default="1,16,64", help="comma-separated (default 1,16,64)")
    parser.add_argument("--threads", type=int, default=1,
                        help="wrk threads (default 1: wrk shares the 2 cores with the servers)")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--prometheus-multiproc", action="store_true",
                        help="set PROMETHEUS_MULTIPROC_DIR as `make run` does (off by default)")
    parser.add_argument("--floor", action="store_true",
                        help="also load bench/wsgi_floor.py (a plain WSGI callable, no Flask) as a floor")
    parser.add_argument("--server-args", default="",
                        help="extra gunicorn options for every server, e.g. '--worker-class sync' to compare "
                             "with the Procfile's worker class (command-line options win over its config)")
    parser.add_argument("--output", type=Path, default=RESULTS / "web.json")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get update && apt-get install -y wrk")
    connections = [int(c) for c in args.connections.split(",")]
    endpoints = [e for e in args.endpoints.split(",") if e]
    ratio_target, p99_target = 0.8, 25.0

    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    redis_server = RedisServer(workdir / "redis", persist=False).start()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "WEB_CONCURRENCY", "PROMETHEUS_", "GUNICORN_", "PUBLIC_BASE_URL"))}
    env.update({"TWILIO_AUTH_TOKEN": TOKEN, "REDIS_URL": redis_server.url, **SECRETS})
    if args.prometheus_multiproc:
        (workdir / "metrics").mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "metrics")
    servers = {"ours": Gunicorn("ours", env, None, workdir), "bare": Gunicorn("bare", env, "bench.bare_app:create_app()", workdir)}
    if args.floor:
        servers["floor"] = Gunicorn("floor", env, "bench.wsgi_floor:create_app()", workdir)
    if args.server_args:
        for server in servers.values():
            server.command = server.command.replace("gunicorn ", f"gunicorn {args.server_args} ", 1)
    results: list[dict] = []
    try:
        for server in servers.values():
            server.start()
        workers = {name: server.workers() for name, server in servers.items()}
        print(f"gunicorn: {servers['ours'].command}  (workers: {workers}, PORT per server, WEB_CONCURRENCY unset)")
        checks = {name: {e: check_endpoint(server, e) for e in endpoints} for name, server in servers.items()}
        scripts = {(name, e): write_script(workdir, server, e) for name, server in servers.items() for e in endpoints}
        for endpoint in endpoints:
            for name, server in servers.items():  # warm-up: imports, connection pools, flow caches
                run_wrk(*scripts[(name, endpoint)], 16, args.threads, args.warmup, server)
            for conns in connections:
                row = {"endpoint": endpoint, "path": ENDPOINTS[endpoint][0], "connections": conns,
                       "loadavg_1m_before": round(os.getloadavg()[0], 2), "runs": {name: [] for name in servers}}
                for _ in range(args.repeats):  # ours and bare back to back, so drift hits both alike
                    for name, server in servers.items():
                        run = run_wrk(*scripts[(name, endpoint)], conns, args.threads, args.duration, server)
                        row["runs"][name].append({k: run[k] for k in ("rps", "p50_ms", "p99_ms", "max_ms")})
                        if name not in row or run["rps"] > row[name]["rps"]:
                            row[name] = run  # best of the repeats: the least disturbed run
                row["ratio"] = round(row["ours"]["rps"] / row["bare"]["rps"], 3)
                results.append(row)
                floor = (f" | floor {row['floor']['rps']:>7.0f} rps p99 {row['floor']['p99_ms']:>6.2f} ms"
                         if "floor" in row else "")
                print(f"  {endpoint:<15} c={conns:<3} ours {row['ours']['rps']:>7.0f} rps "
                      f"p99 {row['ours']['p99_ms']:>6.2f} ms | bare {row['bare']['rps']:>7.0f} rps "
                      f"p99 {row['bare']['p99_ms']:>6.2f} ms | ratio {row['ratio']:.2f}{floor}", flush=True)
    finally:
        for server in servers.values():
            server.stop()
        redis_server.stop()

    print()
    print(table(results, p99_target, ratio_target))
    report = {
        **report_header("web"),
        "versions": package_versions("gunicorn", "flask", "werkzeug", "twilio", "redis", "prometheus_client",
                                     "celery"),
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()[0:1],
        "gunicorn_command": web_command(), "server_args": args.server_args, "gunicorn_workers": workers,
        "prometheus_multiproc": args.prometheus_multiproc,
        "duration_s": args.duration, "repeats": args.repeats, "wrk_threads": args.threads,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "targets": {"ratio_to_bare_min": ratio_target, "p99_ms_at_64_max": p99_target},
        "checks": checks, "results": results,
    }
    write_report(args.output, report)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
