"""Shared pieces of the benchmarks: the machine, the Procfile's web command, signing, processes.

Everything here talks to 127.0.0.1 only, and every process it starts is stopped by its own id.
"""
from __future__ import annotations

import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
HOST = "127.0.0.1"

TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "0" * 31 + "1"
HELPLINE_NUMBER = "+443300000111"
MOBILE = "+447400123456"
# The app refuses to start without these (router/settings.py require_secrets): fixed throw-away values.
SECRETS = {"STATE_HASH_SECRET": "bench-state-secret-" + "7" * 32,
           "FOLLOWUP_ENCRYPTION_KEY": "bench-followup-key-" + "9" * 32}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def signature(url: str, params: dict, token: str = TOKEN) -> str:
    """X-Twilio-Signature exactly as tests/support.py computes it (URL with query + POST params)."""
    return RequestValidator(token).compute_signature(url, params)


def form_body(params: dict) -> str:
    return urlencode(params)


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem_gib = round(kb / 1024 / 1024, 1)
    except (OSError, AttributeError):
        pass
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "memory_gib": mem_gib,
            "kernel": platform.release(), "python": platform.python_version()}


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=5)
        if out.returncode != 0:
            return os.environ.get("BENCH_COMMIT", "unknown")
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "router", "tasks", "flows"],
                               cwd=REPO, capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + (" (+ uncommitted changes in router/tasks/flows)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("BENCH_COMMIT", "unknown")


def package_versions(*names: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def procfile_command(kind: str = "web") -> str:
    """The Procfile's command line for a process type, as written (shell syntax, ${VAR:-default})."""
    for line in (REPO / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == kind:
            return command.strip()
    raise SystemExit(f"Procfile has no {kind}: line")


def web_command(app_spec: str | None = None) -> str:
    """The Procfile's web: line, bound to 127.0.0.1 (never 0.0.0.0 here) and optionally serving
    another WSGI app (the bare baseline) with every other setting unchanged."""
    command = procfile_command("web").replace("0.0.0.0", HOST)
    if app_spec is not None:
        original = "'router.web.app:create_app()'"
        if original not in command:
            raise SystemExit(f"cannot find {original} in the Procfile's web: line to swap the app")
        command = command.replace(original, shlex.quote(app_spec))
    return command


def tree_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process and all its live descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(children.get(current, []))
    return total


class Gunicorn:
    """One gunicorn started from the Procfile's web: line in its own process group."""

    def __init__(self, name: str, env: dict, app_spec: str | None, workdir: Path):
        self.name = name
        self.port = free_port()
        self.command = web_command(app_spec)
        self.env = dict(env, PORT=str(self.port))
        # A private control socket, so two servers (and anyone's `make run`) never share one.
        self.env["GUNICORN_CMD_ARGS"] = f"--control-socket {workdir / (name + '.ctl')}"
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 30.0) -> "Gunicorn":
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(["bash", "-c", "exec " + self.command], env=self.env, cwd=REPO,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name}: gunicorn exited; see {self.log_path}:\n"
                                 + self.log_path.read_text()[-3000:])
            try:
                requests.get(self.url + "/healthz", timeout=1)
                if self.workers() >= 1:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name}: gunicorn did not answer in {timeout}s; see {self.log_path}")
            time.sleep(0.1)
        return self

    def workers(self) -> int:
        return len(self.worker_pids())

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        try:
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True,
                                 text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return [int(p) for p in out.split()]

    def cpu_seconds(self) -> float:
        """User+system CPU time of the master and its workers so far."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in [self.process.pid, *self.worker_pids()]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                pass
        return total

    def stop(self) -> None:
        from tests.processes import stop_process_group

        stop_process_group(self.process)


def python() -> str:
    return sys.executable


def report_header(name: str) -> dict:
    """What every results file starts with: which benchmark, when, at which commit, on what machine."""
    from datetime import datetime, timezone

    return {"benchmark": name, "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "commit": git_commit(), "machine": machine()}


def write_report(output, report: dict) -> None:
    """Write a results file (bench/results/*.json) and say where."""
    import json

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {output}")
