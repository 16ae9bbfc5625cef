"""Soak: the whole deployment under a steady mix of calls, texts and follow-ups for a long while, to see
that nothing grows (process memory, Redis memory, Redis keys) and nothing fails.

    python bench/soak.py [--minutes 20] [--calls-per-minute 20] [--texts-per-minute 20]
                         [--followups-per-minute 4] [--sample-seconds 60]

Assembles on 127.0.0.1 what the Procfile runs: web (its `web:` line, gunicorn), worker (`worker:`) and
beat (`beat:`), each as written, with production's timings (no test shortcuts), a throw-away persistent
Redis, and the Twilio stand-in (tests/twilio_standin: message lifecycle, signed status callbacks).
FOLLOWUP_SENDER is a Messaging Service SID, as in the contract's end-to-end checks.

At a steady rate, evenly spaced, from a few threads:
  - a call: the greeting, key 1 (the 24-hour helpline is dialled), the call's final status;
  - a text: a texter (one of a pool) sends hello / a key / 0; the reply must be one TwiML <Message>;
  - a follow-up: a whole call walked as Twilio would (tests.support.Call): key 1, the dial ends, "yes it
    is safe to text", "text me now", then the call's final status. Each from a new mobile number.
Every inbound text and call exists at the stand-in first, so the app's deletions of them are real.
Every answer is checked (status, and TwiML of the expected kind); a refused connection or a timeout is
an error too.

Every `--sample-seconds` (and at the start and end): the RSS of every process (gunicorn master and
workers, Celery worker and its pool, beat, redis-server, and this process, which holds the stand-in and
the load and is not part of the app), Redis' used memory and key count, keys by kind (`hr:<kind>:`, the
broker's own), and keys without a TTL (there must be none but the broker's).

At the end (after the load stops and the pipeline drains, bounded): every follow-up sent exactly once
and deleted, every inbound text and call record deleted, error lines in the processes' logs, and the
app's own error counters from /metrics. Writes bench/results/soak.json; `--plot` draws docs/soak.png.
Exit status 0 only if there were no errors and nothing was left behind.
"""
from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
import requests  # noqa: E402

from router.store.keys import PREFIX  # noqa: E402
from bench.common import (REPO, RESULTS, Gunicorn, package_versions, procfile_command,  # noqa: E402
                          report_header, write_report)
from router.dev.embedded_redis import RedisServer  # noqa: E402
from tests.processes import HttpClient, stop_process_group  # noqa: E402
from tests.support import ACCOUNT_SID, HELPLINE_NUMBER, TOKEN, Call, is_broker_key, signature  # noqa: E402
from tests.twilio_standin import TwilioStandin  # noqa: E402

HELPLINE_24H = "+448082000247"
SENDER = "MG" + "5" * 32                      # a Messaging Service SID, as the end-to-end checks use
METRICS_TOKEN = "soak-metrics-token-0123456789abcdef"
TEXT_BODIES = ("hello", "1", "0", "2", "hi", "9", "0")


# ------------------------------------------------------------------------------------------ processes
class ProcfileProcess:
    """One Procfile line (`worker`, `beat`) run by bash in its own process group, output to a file."""

    def __init__(self, kind: str, env: dict, workdir: Path, ready_marker: str):
        self.kind = kind
        self.env = env
        self.log_path = workdir / f"{kind}.log"
        self.ready_marker = ready_marker
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "ProcfileProcess":
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(["bash", "-c", "exec " + procfile_command(self.kind)], env=self.env,
                                        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while self.ready_marker not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{self.kind} did not start; see {self.log_path}:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process_group(self.process, timeout=30)


def children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(int(p) for p in out.split())


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 2)
    except OSError:
        return None
    return None


def process_table(web: Gunicorn, worker: ProcfileProcess, beat: ProcfileProcess, redis_pid: int) -> dict:
    """role -> pid of every process of the deployment (and this one, which is not part of it)."""
    roles = {"web master": web.process.pid}
    roles.update({f"web worker {i + 1}": pid for i, pid in enumerate(children(web.process.pid))})
    roles["celery worker (main)"] = worker.process.pid
    roles.update({f"celery pool {i + 1}": pid for i, pid in enumerate(children(worker.process.pid))})
    roles["beat"] = beat.process.pid
    roles["redis-server"] = redis_pid
    roles["load + stand-in (not the app)"] = os.getpid()
    return roles


# ------------------------------------------------------------------------------------------ Redis
def key_census(client: redis.Redis) -> dict:
    """Keys by kind, and every key without a TTL (by kind), in one SCAN with pipelined TTLs."""
    kinds: dict[str, int] = {}
    no_ttl: dict[str, int] = {}
    longest: dict[str, int] = {}          # kind -> the longest TTL left on one of its keys, seconds
    lives = {"short (TTL <= 1 h)": 0, "long (TTL > 1 h)": 0}
    total = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal total
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.ttl(key)
        for key, ttl in zip(batch, pipe.execute()):
            kind = "broker (Celery/kombu)" if is_broker_key(key) else (
                PREFIX + key.split(":")[1] if key.startswith(PREFIX) and key.count(":") >= 1 else "other")
            kinds[kind] = kinds.get(kind, 0) + 1
            total += 1
            if ttl == -1:
                no_ttl[kind] = no_ttl.get(kind, 0) + 1
            elif ttl >= 0:
                longest[kind] = max(longest.get(kind, 0), ttl)
                lives["short (TTL <= 1 h)" if ttl <= 3600 else "long (TTL > 1 h)"] += 1
        batch.clear()

    for key in client.scan_iter(count=1000):
        batch.append(key)
        if len(batch) >= 500:
            flush()
    if batch:
        flush()
    return {"keys": total, "by_kind": dict(sorted(kinds.items())), "without_ttl": dict(sorted(no_ttl.items())),
            "by_ttl": lives, "longest_ttl_s": dict(sorted(longest.items()))}


def sample(started: float, roles: dict, client: redis.Redis) -> dict:
    memory = client.info("memory")
    return {"minute": round((time.monotonic() - started) / 60, 2), "time": time.time(),
            "load_1m": round(os.getloadavg()[0], 2),  # the machine's, others' work included
            "rss_mib": {role: rss_mib(pid) for role, pid in roles.items()}, "pids": roles,
            "redis_used_memory_mib": round(memory["used_memory"] / 2 ** 20, 3),
            "redis_rss_mib": round(memory["used_memory_rss"] / 2 ** 20, 3),
            "dbsize": client.dbsize(), **key_census(client)}


# ------------------------------------------------------------------------------------------ load
class Load:
    """Evenly spaced jobs of each kind, run on a few threads; every answer checked."""

    def __init__(self, web_url: str, standin: TwilioStandin, args):
        self.web_url = web_url
        self.standin = standin
        self.args = args
        self.results: list[dict] = []       # kind, ok, problem, seconds
        self.followup_numbers: list[str] = []
        self.inbound_sids: list[str] = []
        self.call_sids: list[str] = []
        self.lateness: list[float] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._texters = [f"+4474002{n:05d}" for n in range(args.texters)]
        self._text_count = itertools.count()
        self._local = threading.local()

    def client(self) -> HttpClient:
        if not hasattr(self._local, "client"):
            self._local.client = HttpClient(self.web_url)
        return self._local.client

    # --- the three kinds of job ---
    def call(self) -> None:
        number = f"+4474003{next(self._numbers):05d}"
        sid = self.standin.add_call(number, HELPLINE_NUMBER)
        call = Call(self.client(), caller=number, call_sid=sid, base=self.web_url).start()
        assert call.gather is not None, f"no menu: {call.heard}"
        call.press("1")
        assert call.dialled == [HELPLINE_24H], f"dialled {call.dialled}"
        self._call_ends(sid, number)

    def followup(self) -> None:
        number = f"+4474001{next(self._numbers):05d}"
        sid = self.standin.add_call(number, HELPLINE_NUMBER)
        call = Call(self.client(), caller=number, call_sid=sid, base=self.web_url).start().press("1")
        call.dial_ends("completed").press("2")            # yes, it is safe to text me
        call.press("1")                                    # a text now
        assert "text you now" in call.text(), f"not booked: {call.heard}"
        with self._lock:
            self.followup_numbers.append(number)
        self._call_ends(sid, number)

    def text(self) -> None:
        n = next(self._text_count)
        number = self._texters[n % len(self._texters)]
        body = TEXT_BODIES[(n // len(self._texters)) % len(TEXT_BODIES)]
        sid = self.standin.add_inbound_message(number, HELPLINE_NUMBER, body)
        with self._lock:
            self.inbound_sids.append(sid)
        params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": number,
                  "To": HELPLINE_NUMBER, "Body": body, "NumMedia": "0"}
        response = self.client().post("/sms", data=params,
                                      headers={"X-Twilio-Signature": signature(self.web_url + "/sms", params)})
        assert response.status_code == 200, f"HTTP {response.status_code}"
        root = ET.fromstring(response.data)
        assert root.tag == "Response", "not TwiML"
        assert len(root.findall("Message")) == 1, f"not one <Message>: {response.data[:200]!r}"

    def _call_ends(self, sid: str, number: str) -> None:
        self.standin.set_call_status(sid, "completed")
        with self._lock:
            self.call_sids.append(sid)
        params = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": number, "To": HELPLINE_NUMBER,
                  "CallStatus": "completed", "Direction": "inbound", "CallDuration": "42"}
        response = self.client().post("/voice/status", data=params, headers={
            "X-Twilio-Signature": signature(self.web_url + "/voice/status", params)})
        assert response.status_code in (200, 204), f"status callback HTTP {response.status_code}"

    # --- running ---
    def _run(self, kind: str, due: float) -> None:
        started = time.monotonic()
        self.lateness.append(started - due)
        problem = None
        try:
            getattr(self, kind)()
        except AssertionError as exc:
            problem = f"{kind}: {exc}"[:300]
        except Exception as exc:  # a refused connection, a timeout, unparsable XML: an error all the same
            problem = f"{kind}: {type(exc).__name__}: {exc}"[:300]
        with self._lock:
            self.results.append({"kind": kind, "ok": problem is None, "problem": problem,
                                 "seconds": round(time.monotonic() - started, 4)})

    def run(self, seconds: float, on_tick) -> None:
        """Evenly spaced jobs for `seconds`; on_tick() is called about once a second from this thread."""
        rates = {"call": self.args.calls_per_minute, "text": self.args.texts_per_minute,
                 "followup": self.args.followups_per_minute}
        start = time.monotonic()
        queue = [(start + (i + 0.5) * 60 / rate, kind) for kind, rate in rates.items() if rate > 0
                 for i in range(int(rate * seconds / 60))]
        heapq.heapify(queue)
        next_tick = start
        with ThreadPoolExecutor(self.args.threads) as pool:
            while queue:
                due, kind = queue[0]
                now = time.monotonic()
                if now >= next_tick:
                    on_tick()
                    next_tick = now + 1
                if due > now:
                    time.sleep(min(due - now, max(0.0, next_tick - now), 0.5))
                    continue
                heapq.heappop(queue)
                pool.submit(self._run, kind, due)
        on_tick()


# ------------------------------------------------------------------------------------------ the end
ERROR_LINE = re.compile(r'"level":\s*"(ERROR|CRITICAL)"|\bERROR\b|Traceback \(most recent call last\)|'
                        r"Unrecoverable error|WORKER TIMEOUT")


def error_lines(text: str) -> list[str]:
    return [line[:300] for line in text.splitlines() if ERROR_LINE.search(line)]


def app_error_counters(web_url: str) -> dict:
    """The app's own failure counters from /metrics (sum over labels), to report beside ours."""
    try:
        text = requests.get(web_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                            timeout=5).text
    except requests.RequestException as exc:
        return {"unreadable": str(exc)}
    wanted = re.compile(r'^(helpline_errors_total|helpline_worker_followups_total|'
                        r'helpline_worker_deletions_total|helpline_limits_total)(\{[^}]*\})?\s+([0-9.e+]+)$')
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = wanted.match(line)
        if match:
            found[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return found


def leftovers(standin: TwilioStandin, load: Load) -> dict:
    sent = standin.sent_messages()
    per_number: dict[str, int] = {}
    for message in sent:
        per_number[message["to"]] = per_number.get(message["to"], 0) + 1
    deleted = set(standin.deleted_sids)
    deleted_calls = set(standin.deleted_call_sids)
    booked = set(load.followup_numbers)
    return {"follow-ups not sent": len(booked - set(per_number)),
            "numbers texted more than once": sum(1 for n in booked if per_number.get(n, 0) > 1),
            "texts to numbers that booked none": sum(1 for n in per_number if n not in booked),
            "sent texts not deleted": sum(1 for m in sent if m["sid"] not in deleted),
            "inbound texts not deleted": sum(1 for sid in load.inbound_sids if sid not in deleted),
            "call records not deleted": sum(1 for sid in load.call_sids if sid not in deleted_calls),
            "follow-ups sent": len(sent)}


def unfinished(left: dict) -> dict:
    return {k: v for k, v in left.items() if v and k != "follow-ups sent"}


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def summarise(load: Load) -> dict:
    by_kind: dict[str, dict] = {}
    for kind in ("call", "text", "followup"):
        mine = [r for r in load.results if r["kind"] == kind]
        seconds = [r["seconds"] for r in mine]
        by_kind[kind] = {"jobs": len(mine), "errors": sum(1 for r in mine if not r["ok"]),
                         "p50_ms": round(1000 * (percentile(seconds, 50) or 0), 1),
                         "p99_ms": round(1000 * (percentile(seconds, 99) or 0), 1),
                         "max_ms": round(1000 * max(seconds, default=0), 1)}
    problems = [r["problem"] for r in load.results if r["problem"]]
    return {"by_kind": by_kind, "errors": len(problems), "example_errors": problems[:10],
            "start_lateness_p99_ms": round(1000 * (percentile(load.lateness, 99) or 0), 1)}


def growth(samples: list[dict]) -> dict:
    """From the second sample (after warm-up) to the last: how much each line moved."""
    if len(samples) < 3:
        return {}
    first, last = samples[1], samples[-1]
    rss = {role: round((last["rss_mib"].get(role) or 0) - (first["rss_mib"].get(role) or 0), 2)
           for role in last["rss_mib"]}
    return {"from_minute": first["minute"], "to_minute": last["minute"], "rss_mib": rss,
            "redis_used_memory_mib": round(last["redis_used_memory_mib"] - first["redis_used_memory_mib"], 3),
            "keys": last["keys"] - first["keys"],
            "keys_by_kind": {k: last["by_kind"].get(k, 0) - first["by_kind"].get(k, 0)
                             for k in sorted(set(first["by_kind"]) | set(last["by_kind"]))}}


# ------------------------------------------------------------------------------------------ plot
def plot(report: dict, output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = report["samples"]
    minutes = [s["minute"] for s in samples]
    end = report["settings"]["minutes"]
    fig, (ax_rss, ax_mem, ax_keys) = plt.subplots(1, 3, figsize=(17, 5))
    for role in samples[-1]["rss_mib"]:
        values = [s["rss_mib"].get(role) for s in samples]
        style = ":" if "not the app" in role else "-"
        ax_rss.plot(minutes, values, style, marker="o", markersize=3, label=role)
    ax_rss.set_title("RSS of every process (MiB)")
    top = max(v or 0 for s in samples for v in s["rss_mib"].values())
    ax_rss.set_ylim(0, top * 1.5)  # room above the lines for the legend
    ax_rss.legend(fontsize=7, ncol=2, loc="upper left")
    ax_mem.plot(minutes, [s["redis_used_memory_mib"] for s in samples], "o-", markersize=3,
                label="used_memory")
    ax_mem.plot(minutes, [s["redis_rss_mib"] for s in samples], "s--", markersize=3, label="RSS")
    ax_mem.set_title("Redis memory (MiB)")
    ax_mem.legend(fontsize=8)
    ax_keys.plot(minutes, [s["keys"] for s in samples], "o-", color="black", markersize=3, label="all keys")
    for bucket, style in (("short (TTL <= 1 h)", "s--"), ("long (TTL > 1 h)", "^--")):
        ax_keys.plot(minutes, [s["by_ttl"][bucket] for s in samples], style, color="grey", markersize=3,
                     label=f"keys, {bucket}")
    kinds = sorted({k for s in samples for k in s["by_kind"]},
                   key=lambda k: -max(s["by_kind"].get(k, 0) for s in samples))
    for kind in kinds[:6]:
        ax_keys.plot(minutes, [s["by_kind"].get(kind, 0) for s in samples], "-", linewidth=1, label=kind)
    ax_keys.plot(minutes, [sum(s["without_ttl"].values()) - s["without_ttl"].get("broker (Celery/kombu)", 0)
                           for s in samples], "x:", color="red", label="app keys without TTL")
    ax_keys.set_title("Redis keys (app keys without a TTL: red)")
    ax_keys.legend(fontsize=7, loc="upper left")
    for ax in (ax_rss, ax_mem, ax_keys):
        ax.set_xlabel("minute")
        ax.axvline(end, color="grey", linewidth=0.8, linestyle="--")
        if ax is not ax_rss:
            ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    s = report["settings"]
    fig.suptitle(f"Soak, {report['commit']}: {s['calls_per_minute']} calls, {s['texts_per_minute']} texts and "
                 f"{s['followups_per_minute']} follow-ups a minute for {s['minutes']} min (load stops at the "
                 f"dashed line); {report['summary']['errors']} errors", fontsize=10)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    print(f"wrote {output}")


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0, help="how long the load runs (default 20)")
    parser.add_argument("--calls-per-minute", type=float, default=20.0)
    parser.add_argument("--texts-per-minute", type=float, default=20.0)
    parser.add_argument("--followups-per-minute", type=float, default=4.0,
                        help="whole calls ending in 'text me now', each from a new number (default 4)")
    parser.add_argument("--texters", type=int, default=200, help="distinct numbers that text (default 200)")
    parser.add_argument("--threads", type=int, default=4, help="load threads (default 4)")
    parser.add_argument("--sample-seconds", type=float, default=60.0)
    parser.add_argument("--drain-seconds", type=float, default=180.0,
                        help="after the load, how long to wait for every text to be sent and deleted")
    parser.add_argument("--step-delay", type=float, default=0.5, help="stand-in lifecycle step, seconds")
    parser.add_argument("--output", type=Path, default=RESULTS / "soak.json")
    parser.add_argument("--plot", type=Path, default=None, help="also draw the samples (e.g. docs/soak.png)")
    parser.add_argument("--plot-only", action="store_true", help="draw --plot from --output and exit")
    args = parser.parse_args(argv)
    if args.plot_only:
        plot(json.loads(args.output.read_text()), args.plot)
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    redis_server = RedisServer(workdir / "redis", persist=True).start()   # as deployed: AOF on
    standin = TwilioStandin(ACCOUNT_SID, TOKEN, step_delay=args.step_delay).start()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "CELERY_", "FOLLOWUP_", "TASK_RETRY", "WEB_CONCURRENCY", "DELETION_",
                                "WORKER_CONCURRENCY", "PROMETHEUS_", "GUNICORN_", "PUBLIC_BASE_URL",
                                "HISTORY_SWEEP", "STATE_HASH", "METRICS_", "FLOWS_"))}
    prometheus = workdir / "prometheus"
    prometheus.mkdir()
    env.update({"REDIS_URL": redis_server.url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": TOKEN,
                "TWILIO_API_BASE_URL": standin.url, "FOLLOWUP_SENDER": SENDER,
                "STATE_HASH_SECRET": "soak-state-secret-" + "7" * 32,
                "FOLLOWUP_ENCRYPTION_KEY": "soak-followup-key-" + "9" * 32,
                "METRICS_TOKEN": METRICS_TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(prometheus),
                "FLOWS_HISTORY_DIR": str(workdir / "flows-history"),
                "CELERY_BEAT_SCHEDULE": str(workdir / "beat" / "celerybeat-schedule"),
                "PYTHONPATH": str(REPO),
                "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"})
    web = Gunicorn("web", env, None, workdir)
    worker = ProcfileProcess("worker", env, workdir, "ready.")
    beat = ProcfileProcess("beat", env, workdir, "beat: Starting")
    client = redis.Redis.from_url(redis_server.url, decode_responses=True, socket_timeout=10)
    samples: list[dict] = []
    load = None
    try:
        web.start()
        worker.start()
        beat.start()
        roles = process_table(web, worker, beat, redis_server.process.pid)
        print(f"soak: {args.minutes} min; processes {roles}", flush=True)
        load = Load(web.url, standin, args)
        started = time.monotonic()
        samples.append(sample(started, roles, client))
        next_sample = started + args.sample_seconds

        def tick() -> None:
            nonlocal next_sample
            if time.monotonic() >= next_sample:
                next_sample += args.sample_seconds
                samples.append(sample(started, process_table(web, worker, beat, redis_server.process.pid),
                                      client))
                last = samples[-1]
                done = len(load.results)
                errors = sum(1 for r in load.results if not r["ok"])
                print(f"  minute {last['minute']:5.1f}: {done} jobs, {errors} errors, keys {last['keys']} "
                      f"(no TTL: {last['without_ttl']}), redis {last['redis_used_memory_mib']} MiB, "
                      f"rss {json.dumps(last['rss_mib'])}", flush=True)

        load.run(args.minutes * 60, tick)
        load_ended = time.monotonic()
        deadline = load_ended + args.drain_seconds
        while unfinished(leftovers(standin, load)) and time.monotonic() < deadline:
            time.sleep(1)
        drain_seconds = round(time.monotonic() - load_ended, 1)
        samples.append(sample(started, process_table(web, worker, beat, redis_server.process.pid), client))
        left = leftovers(standin, load)
        counters = app_error_counters(web.url)
        logs = {"web": error_lines(web.log_path.read_text(errors="replace")),
                "worker": error_lines(worker.log()), "beat": error_lines(beat.log())}
        alive = {"web": web.process.poll() is None, "worker": worker.process.poll() is None,
                 "beat": beat.process.poll() is None, "redis": redis_server.is_running()}
    finally:
        for part in (beat, worker, web):
            if part.process is not None:
                part.stop()
        standin.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    summary = summarise(load)
    log_errors = sum(len(v) for v in logs.values())
    app_keys_without_ttl = {k: v for s in samples for k, v in s["without_ttl"].items()
                            if k != "broker (Celery/kombu)"}
    restarted = sorted({role for s in samples for role, pid in s["pids"].items()
                        if pid != samples[0]["pids"].get(role, pid)})
    summary.update({"log_error_lines": log_errors, "left_over": unfinished(left),
                    "app_keys_without_ttl": app_keys_without_ttl, "processes_restarted": restarted,
                    "all_processes_alive": all(alive.values()), "drain_seconds": drain_seconds})
    clean = (summary["errors"] == 0 and not log_errors and not unfinished(left) and not app_keys_without_ttl
             and all(alive.values()) and not restarted)
    report = {
        **report_header("soak"),
        "versions": package_versions("celery", "kombu", "redis", "twilio", "gunicorn", "gevent"),
        "settings": {"minutes": args.minutes, "calls_per_minute": args.calls_per_minute,
                     "texts_per_minute": args.texts_per_minute, "followups_per_minute": args.followups_per_minute,
                     "texters": args.texters, "threads": args.threads, "sample_seconds": args.sample_seconds,
                     "step_delay_s": args.step_delay, "followup_sender": "Messaging Service SID (MG...)",
                     "processes": "Procfile web:, worker:, beat: as written; redis-server with AOF; defaults"},
        "clean": clean,
        "summary": summary,
        "deliveries": left,
        "app_counters": counters,
        "log_error_examples": {k: v[:5] for k, v in logs.items()},
        "growth_after_first_minute": growth(samples),
        "samples": samples,
    }
    write_report(args.output, report)
    print(json.dumps({k: report[k] for k in ("clean", "summary", "deliveries", "growth_after_first_minute")},
                     indent=1))
    if args.plot is not None:
        plot(report, args.plot)
    return 0 if clean else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop every process started, on SIGTERM too
    sys.exit(main())
