"""Real processes for end-to-end tests: Celery workers as OS processes, the web app on a real port."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import requests
from werkzeug.serving import make_server

from router.settings import REPO_ROOT
from tests.support import FOLLOWUP_SENDER, HELPLINE_NUMBER, METRICS_TOKEN


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.02, message: str = "condition"):
    """Poll a condition until it holds (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


def stop_process_group(process: subprocess.Popen | None, timeout: float = 15.0) -> None:
    """SIGTERM a process started with start_new_session=True and all its children; SIGKILL if they
    have not gone within `timeout`."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class CeleryWorker:
    env: dict
    name: str = "w1"
    concurrency: int = 1
    process: subprocess.Popen | None = None
    output: list[str] = field(default_factory=list)

    ready_marker = "ready."

    def args(self) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "prefork",
                "--concurrency", str(self.concurrency), "-n", f"{self.name}@%h", "--without-gossip",
                "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"]

    def start(self, timeout: float = 30.0) -> "CeleryWorker":
        self.output = []
        args = self.args()
        self.process = subprocess.Popen(args, env=self.env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=self._drain, args=(self.process,), daemon=True).start()
        wait_until(lambda: any(self.ready_marker in line for line in self.output)
                   or self.process.poll() is not None, timeout, message=f"celery {self.name} to be ready")
        assert self.process.poll() is None, "".join(self.output[-30:])
        return self

    def _drain(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.output.append(line)

    def log(self) -> str:
        return "".join(self.output)

    def kill9(self) -> None:
        """SIGKILL the worker and its pool children at once: no clean shutdown, no acks."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process_group(self.process)


@dataclass
class CeleryBeat(CeleryWorker):
    """Celery beat as in the Procfile (its schedule file in a temporary folder, if given)."""

    schedule_file: str | None = None
    ready_marker = "beat: Starting"

    def args(self) -> list[str]:
        schedule = ["--schedule", self.schedule_file] if self.schedule_file else []
        return [sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "INFO", *schedule]


def worker_env(redis_url: str, standin, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "CELERY_"))}
    env.update({
        "REDIS_URL": redis_url, "TWILIO_ACCOUNT_SID": standin.account_sid,
        "TWILIO_AUTH_TOKEN": standin.auth_token, "TWILIO_API_BASE_URL": standin.url,
        "CELERY_VISIBILITY_TIMEOUT": "4", "FOLLOWUP_LOCK_SECONDS": "3", "FOLLOWUP_LEASE_SECONDS": "6",
        "TASK_RETRY_BASE_SECONDS": "0.05", "DELETION_LEASE_SECONDS": "3", "PYTHONPATH": str(REPO_ROOT),
        "METRICS_TOKEN": METRICS_TOKEN, "FOLLOWUP_SENDER": FOLLOWUP_SENDER, "HELPLINE_NUMBERS": HELPLINE_NUMBER,
    })
    env.update(extra)
    return env


class WebServer:
    """The real Flask app served over HTTP in a thread, so the stand-in's status callbacks reach it."""

    def __init__(self, app, port: int, host: str = "127.0.0.1"):
        self.server = make_server(host, port, app, threaded=True)
        self.url = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "WebServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()


class _HttpResponse:
    def __init__(self, response: requests.Response):
        self.status_code = response.status_code
        self.data = response.content
        self.mimetype = response.headers.get("Content-Type", "").split(";")[0]


class HttpClient:
    """Looks like Flask's test client to tests.support (post(path, data, headers, base_url)), over HTTP."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def post(self, path: str, data=None, headers=None, base_url=None):
        return _HttpResponse(self.session.post(self.base + path, data=data, headers=headers, timeout=10))


# ------------------------------------------------------------------ appended: gunicorn per the Procfile
def procfile_command(name: str) -> str:
    """The command of one Procfile line (`web`, `worker`, `beat`), as a shell would run it."""
    for line in (REPO_ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise KeyError(f"no {name}: line in the Procfile")


@dataclass
class GunicornWeb:
    """The Procfile's `web:` line run by a shell, as a platform runs it, but bound to 127.0.0.1 only
    (tests never listen on other interfaces). Ready when GET /healthz answers 200."""

    env: dict
    port: int = 0
    process: subprocess.Popen | None = None
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> str:
        line = procfile_command("web")
        assert "--bind 0.0.0.0:" in line, f"the Procfile's web line no longer binds as expected: {line}"
        return "exec " + line.replace("--bind 0.0.0.0:", "--bind 127.0.0.1:", 1)

    def start(self, timeout: float = 30.0) -> "GunicornWeb":
        from router.dev.embedded_redis import free_port

        self.port = self.port or free_port()
        self.output = []
        self.process = subprocess.Popen(["/bin/sh", "-c", self.command()], env=dict(self.env, PORT=str(self.port)),
                                        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        threading.Thread(target=self._drain, daemon=True).start()
        wait_until(lambda: self.healthy() or self.process.poll() is not None, timeout,
                   interval=0.05, message=f"gunicorn on port {self.port} to answer /healthz")
        assert self.process.poll() is None, self.log()[-3000:]
        return self

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    def healthy(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return "".join(self.output)

    def stop(self) -> None:
        stop_process_group(self.process)


def start_together(*processes, timeout: float = 60.0):
    """Start several processes (anything with .start()) at once and wait until every one is ready."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(processes)) as pool:
        for future in [pool.submit(p.start) for p in processes]:
            future.result(timeout=timeout)
    return processes


class RoundRobinClient:
    """Like HttpClient, but each post goes to the next of several web processes, as a load balancer
    without sticky sessions would send them; `served` records which base answered which path."""

    def __init__(self, bases: list[str]):
        self.bases = list(bases)
        self.served: list[tuple[str, str, int]] = []
        self.session = requests.Session()
        self._next = 0

    def post(self, path: str, data=None, headers=None, base_url=None):
        base = self.bases[self._next % len(self.bases)]
        self._next += 1
        response = _HttpResponse(self.session.post(base + path, data=data, headers=headers, timeout=10))
        self.served.append((base, path, response.status_code))
        return response


def stop_together(*processes) -> None:
    """Stop several processes (anything with .stop()) at once; None entries are skipped."""
    from concurrent.futures import ThreadPoolExecutor

    running = [p for p in processes if p is not None]
    if running:
        with ThreadPoolExecutor(max_workers=len(running)) as pool:
            for future in [pool.submit(p.stop) for p in running]:
                future.result()
