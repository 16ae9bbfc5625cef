"""The follow-up pipeline end to end: from the caller's "text me now" to the text's deletion at Twilio.

    python bench/followups.py [--count 300] [--workers 1,2] [--step-delay 0.01]

Assembles the deployed pieces on 127.0.0.1: a throw-away Redis, the web tier from the Procfile's `web:`
line (gunicorn, default workers) on a real port so status callbacks reach it, a Celery worker
(tests.processes.CeleryWorker, prefork, with 1 and then 2 pool processes), and the Twilio stand-in
(tests/twilio_standin, automatic lifecycle queued -> sending -> sent -> delivered, `--step-delay`
seconds a step, signed status callbacks). No beat: "now" follow-ups are queued by the web request.

For each worker setting it walks one call to learn the "when?" step's action URL, then fires `--count`
signed key presses "1 = now" (distinct CallSids and mobile numbers, `--trigger-concurrency` at a time)
and waits until every resulting text is deleted at the stand-in. Reported:
  - throughput: follow-ups per second from the first trigger to the last deletion (and to the last send)
  - per follow-up: trigger answered -> message created at the stand-in, trigger answered -> deleted
  - deletion lag: the final ("delivered") status callback answered by the web tier -> the DELETE
    answered by the stand-in.
The stand-in's request_log has timestamps, and its callback_log entries the time each callback was
answered (older stand-ins had none, so the subclass below still stamps them). The stand-in posts callbacks
from one thread by default (`--callback-threads` > 1 posts them in parallel, as Twilio does); either way
it is part of what is measured. The key presses are posted with http.client (requests cost this process
about as much CPU as the stand-in itself). Writes bench/results/followups.json. Bounded by `--timeout`
per setting.
"""
from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from bench.common import (SECRETS, RESULTS, Gunicorn, package_versions, report_header, signature,  # noqa: E402
                          tree_cpu_seconds, write_report)
from router.dev.embedded_redis import RedisServer  # noqa: E402
from router.definition.phone import can_receive_texts  # noqa: E402
from tests.processes import CeleryWorker, HttpClient  # noqa: E402
from tests.support import ACCOUNT_SID, FOLLOWUP_SENDER, HELPLINE_NUMBER, TOKEN, Call  # noqa: E402
from tests.twilio_standin import TwilioStandin  # noqa: E402


# Celery's INFO line per finished task: "Task tasks.x.y[<id>] succeeded in 0.0123s: ..."
TASK_DONE = re.compile(r"Task (tasks\.[\w.]+)\[[^\]]+\] succeeded in ([\d.]+)s")


class _StampedList(list):
    """A list that stamps each appended dict with the wall-clock time it was appended."""

    def append(self, entry):  # noqa: D401 - list API
        if isinstance(entry, dict):
            entry.setdefault("time", time.time())
        super().append(entry)


class TimedStandin(TwilioStandin):
    """The stand-in, with a time on every callback_log entry (taken when the callback was answered)
    and optionally several callback threads."""

    def __init__(self, *args, callback_threads: int = 1, **kwargs):
        self.callback_threads = callback_threads
        super().__init__(*args, **kwargs)

    def _reset_state(self) -> None:
        super()._reset_state()
        self._callback_log = _StampedList()

    def start(self) -> "TimedStandin":
        super().start()
        for n in range(1, self.callback_threads):
            thread = threading.Thread(target=self._run_callbacks, name=f"twilio-standin-callbacks-{n}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for _ in range(1, self.callback_threads):
            self._callbacks.put(None)  # one stop marker per extra callback thread
        super().stop()

    def deleted_count(self) -> int:
        with self._cond:
            return len(self._deleted_sids)

    def raw_logs(self) -> tuple[list, list, dict]:
        with self._cond:
            to_by_sid = {sid: r.to for sid, r in self._messages.items() if r.direction == "outbound-api"}
            return list(self._request_log), list(self._callback_log), to_by_sid


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(values: list[float]) -> dict:
    ms = [1000 * v for v in values]
    return {"n": len(ms), "p50": _r(percentile(ms, 50)), "p90": _r(percentile(ms, 90)),
            "p99": _r(percentile(ms, 99)), "max": _r(max(ms) if ms else None),
            "mean": _r(statistics.fmean(ms) if ms else None)}


def _r(value):
    return None if value is None else round(value, 1)


def mobiles(count: int) -> list[str]:
    """Distinct valid UK mobile numbers (+447400 1xxxxx), each one that may receive texts."""
    numbers = [f"+4474001{n:05d}" for n in range(count)]
    assert all(can_receive_texts(n) for n in numbers[:3] + numbers[-3:])
    return numbers


def learn_final_step(web_url: str) -> str:
    """Walk one call as Twilio would (tests.support.Call) up to "when shall we text?"; return the URL
    of that step's key press (which, with Digits=1, schedules the text now)."""
    call = Call(HttpClient(web_url), caller="+447400199999", base=web_url).start().press("1")
    assert call.dialled, "the 24-hour helpline should be dialled"
    call.dial_ends("completed").press("2")  # yes, it is safe to text me (one question)
    action = call.gather.get("action")
    assert "when:" in action or "when." in action, action
    # without its binding to the learned call's CallSid (router/web/replay.py: a URL without `b` is let
    # through, as from before bindings), so each trigger's own CallSid may press the key
    action = re.sub(r"([?&])b=[^&]*&?", r"\1", action).rstrip("?&")
    return urljoin(call.url, action)  # a path: Call keeps paths relative to the web base


def cpu_snapshot(web: Gunicorn, worker: CeleryWorker, redis_pid: int) -> dict[str, float]:
    """CPU seconds so far of each part: the web tier, the Celery worker (master + pool), Redis, and this
    process (the Twilio stand-in's threads and the trigger threads)."""
    own = os.times()
    return {"web (gunicorn)": tree_cpu_seconds(web.process.pid),
            "celery worker": tree_cpu_seconds(worker.process.pid),
            "redis-server": tree_cpu_seconds(redis_pid),
            "stand-in + triggers (this process)": own.user + own.system}


def run_setting(args, standin: TimedStandin, web: Gunicorn, redis_url: str, worker_env: dict,
                processes: int, redis_pid: int) -> dict:
    standin.reset()
    redis.Redis.from_url(redis_url).flushall()
    worker = CeleryWorker(worker_env, name=f"bench{processes}", concurrency=processes).start()
    try:
        path = learn_final_step(web.url)  # stops short of the key press: schedules nothing

        numbers = mobiles(args.count)
        url = web.url + path
        split = urlsplit(url)

        def trigger(i: int) -> tuple[str, float, int]:
            """One signed key press, posted with http.client: requests' own work per post (and its walk
            of the environment for proxies) was half of this process's CPU, which shares the 2 cores."""
            params = {"CallSid": f"CA{0xbe4c0000 + i:032x}", "AccountSid": ACCOUNT_SID, "From": numbers[i],
                      "To": HELPLINE_NUMBER, "CallStatus": "in-progress", "Direction": "inbound",
                      "Digits": "1"}
            connection = http.client.HTTPConnection(split.hostname, split.port, timeout=10)
            try:
                connection.request("POST", f"{split.path}?{split.query}", body=urlencode(params).encode(),
                                   headers={"Content-Type": "application/x-www-form-urlencoded",
                                            "X-Twilio-Signature": signature(url, params, TOKEN)})
                response = connection.getresponse()
                response.read()
            finally:
                connection.close()
            return numbers[i], time.time(), response.status

        cpu_before = cpu_snapshot(web, worker, redis_pid)
        started = time.time()
        with ThreadPoolExecutor(args.trigger_concurrency) as pool:
            triggered = list(pool.map(trigger, range(args.count)))
        triggers_done = time.time()
        bad = [code for _, _, code in triggered if code != 200]
        deadline = time.monotonic() + args.timeout
        while standin.deleted_count() < args.count and time.monotonic() < deadline:
            time.sleep(0.05)
        finished = time.time()
        cpu_after = cpu_snapshot(web, worker, redis_pid)
        request_log, callback_log, to_by_sid = standin.raw_logs()
    finally:
        worker.stop()
    task_times: dict[str, list[float]] = {}
    for match in TASK_DONE.finditer(worker.log()):
        task_times.setdefault(match.group(1), []).append(float(match.group(2)))

    trigger_at = {number: at for number, at, _ in triggered}
    created_at: dict[str, float] = {}
    for entry in request_log:
        if entry["method"] == "POST" and entry["path"].endswith("/Messages.json") and entry["status"] == 201:
            created_at.setdefault(entry["form"].get("To"), entry["time"])
    deleted_at: dict[str, float] = {}
    delete_attempts = 0
    for entry in request_log:
        if entry["method"] == "DELETE" and "/Messages/" in entry["path"]:
            delete_attempts += 1
            if entry["status"] == 204:
                sid = entry["path"].rsplit("/", 1)[1].removesuffix(".json")
                deleted_at.setdefault(sid, entry["time"])
    final_at: dict[str, float] = {}
    for entry in callback_log:
        if entry["status"] in ("delivered", "undelivered", "failed") and entry.get("ok"):
            final_at.setdefault(entry["message_sid"], entry["time"])

    lags = [deleted_at[sid] - final_at[sid] for sid in deleted_at if sid in final_at]
    to_send = [created_at[n] - trigger_at[n] for n in trigger_at if n in created_at]
    to_delete = [deleted_at[sid] - trigger_at[to_by_sid[sid]] for sid in deleted_at
                 if to_by_sid.get(sid) in trigger_at]
    deleted = len(deleted_at)
    last_delete = max(deleted_at.values()) if deleted_at else finished
    last_create = max(created_at.values()) if created_at else finished
    return {
        "worker_processes": processes, "count": args.count, "trigger_failures": len(bad),
        "sent": len(created_at), "deleted": deleted, "delete_requests": delete_attempts,
        "callbacks_posted": len(callback_log),
        "callbacks_failed": sum(1 for e in callback_log if not e.get("ok")),
        "complete": deleted >= args.count,
        "trigger_seconds": round(triggers_done - started, 2),
        "seconds_to_last_send": round(last_create - started, 2),
        "seconds_to_last_delete": round(last_delete - started, 2),
        "sent_per_second": round(len(created_at) / max(last_create - started, 1e-9), 1),
        "deleted_per_second": round(deleted / max(last_delete - started, 1e-9), 1),
        "trigger_to_send_ms": summary_ms(to_send),
        "trigger_to_delete_ms": summary_ms(to_delete),
        "deletion_lag_ms": summary_ms(lags),
        "task_run_ms": {name: summary_ms(times) for name, times in sorted(task_times.items())},
        "cpu_ms_per_followup": {part: round(1000 * (cpu_after[part] - cpu_before[part]) / max(deleted, 1), 2)
                                for part in cpu_before},
        "wall_seconds": round(finished - started, 2),
    }


def table(rows: list[dict]) -> str:
    head = (f"{'workers':>7} {'N':>5} {'done':>5} | {'sent/s':>7} {'deleted/s':>9} | "
            f"{'send p50':>8} {'send p99':>8} | {'del. lag p50':>12} {'p99':>7} {'max':>7} | "
            f"{'end-to-end p50':>14} {'p99':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['worker_processes']:>7} {r['count']:>5} {r['deleted']:>5} | {r['sent_per_second']:>7.1f} "
            f"{r['deleted_per_second']:>9.1f} | {r['trigger_to_send_ms']['p50']:>8} "
            f"{r['trigger_to_send_ms']['p99']:>8} | {r['deletion_lag_ms']['p50']:>12} "
            f"{r['deletion_lag_ms']['p99']:>7} {r['deletion_lag_ms']['max']:>7} | "
            f"{r['trigger_to_delete_ms']['p50']:>14} {r['trigger_to_delete_ms']['p99']:>7}")
    return "\n".join(lines) + "\n(times in ms; 'del. lag' = final status callback answered -> DELETE answered)"


def flows_without_caps(workdir: Path) -> Path:
    """The shipped flows with the follow-up caps (config.yaml `limits:`) lifted: the bench asks for
    --count texts within seconds, far past what the helpline allows a minute, to measure the pipeline."""
    import shutil

    import yaml

    folder = workdir / "flows"
    shutil.copytree(Path(__file__).resolve().parent.parent / "flows", folder)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config.setdefault("limits", {}).update(followups_per_minute=10_000)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300, help="follow-ups per setting (default 300)")
    parser.add_argument("--workers", default="1,2", help="Celery pool processes to try (default 1,2)")
    parser.add_argument("--step-delay", type=float, default=0.01, help="stand-in lifecycle step, seconds")
    parser.add_argument("--callback-threads", type=int, default=1,
                        help="stand-in threads posting status callbacks (its default is 1)")
    parser.add_argument("--trigger-concurrency", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait per setting")
    parser.add_argument("--output", type=Path, default=RESULTS / "followups.json")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-followups-"))
    redis_server = RedisServer(workdir / "redis", persist=False).start()
    standin = TimedStandin(ACCOUNT_SID, TOKEN, step_delay=args.step_delay,
                           callback_threads=args.callback_threads).start()
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("TWILIO_", "CELERY_", "FOLLOWUP_", "TASK_RETRY", "WEB_CONCURRENCY",
                                     "WORKER_CONCURRENCY", "PROMETHEUS_", "GUNICORN_", "PUBLIC_BASE_URL"))}
    base_env.update({"REDIS_URL": redis_server.url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                     "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_API_BASE_URL": standin.url,
                     "FLOWS_DIR": str(flows_without_caps(workdir)),
                     # a real deployment's neutral sender (the stand-in's Messaging Service), and deletions
                     # due at once (the stand-in does not ask for Twilio's minute)
                     "FOLLOWUP_SENDER": FOLLOWUP_SENDER, "HELPLINE_NUMBERS": HELPLINE_NUMBER,
                     "DELETION_WAIT_SECONDS": "0", **SECRETS})
    worker_env = dict(base_env, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    web = Gunicorn("web", base_env, None, workdir)
    rows = []
    try:
        web.start()
        for processes in [int(p) for p in args.workers.split(",")]:
            row = run_setting(args, standin, web, redis_server.url, worker_env, processes,
                              redis_server.process.pid)
            rows.append(row)
            print(f"  {processes} worker process(es): {row['deleted']}/{row['count']} deleted, "
                  f"{row['deleted_per_second']} follow-ups/s to deletion, "
                  f"deletion lag p50 {row['deletion_lag_ms']['p50']} ms p99 {row['deletion_lag_ms']['p99']} ms",
                  flush=True)
    finally:
        web.stop()
        standin.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(rows))
    for r in rows:
        parts = ", ".join(f"{k} {v:.1f}" for k, v in r["cpu_ms_per_followup"].items())
        print(f"CPU ms per follow-up with {r['worker_processes']} worker process(es): {parts} "
              f"(total {sum(r['cpu_ms_per_followup'].values()):.1f}; the machine has "
              f"{os.cpu_count()} cores, so at most ~{1000 * os.cpu_count() / max(sum(r['cpu_ms_per_followup'].values()), 1e-9):.0f}/s "
              f"with everything on it)")
    report = {
        **report_header("followups"),
        "versions": package_versions("celery", "kombu", "redis", "twilio", "gunicorn"),
        "settings": {"count": args.count, "step_delay_s": args.step_delay,
                     "callback_threads": args.callback_threads, "trigger_concurrency": args.trigger_concurrency,
                     "web": "Procfile web: line (gunicorn, default workers)",
                     "worker": "celery -A tasks worker --pool prefork --concurrency N (tests.processes.CeleryWorker)"},
        "results": rows,
    }
    write_report(args.output, report)
    return 0 if all(r["complete"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
