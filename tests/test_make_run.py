"""`make run` (the Makefile's recipe: python -m router.dev.run; its install step skipped with `-o install`,
as the suite has installed already), started as a new user would, in a terminal: a clean environment
with nothing of the project on PATH (no virtualenv active), its own ports and data folder.

It must bring up the embedded Redis, web, worker and beat and keep them up: /healthz answers, a signed
call gets the menu, beat's dispatches are run by the worker. Its files are private (.data 0700, files
0600) and its Redis refuses a connection without the password. A process killed is started again by
the supervisor while the others never stop; Ctrl-C (SIGINT to the terminal's foreground process
group, as the terminal sends it) stops everything and make exits 0, without "Interrupt" or "Error 130".
"""
from __future__ import annotations

import os
import pty
import re
import shutil
import signal
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests

from router.dev.embedded_redis import free_port
from router.settings import REPO_ROOT
from tests.processes import HttpClient, wait_until
from tests.support import post_signed, said, parse

CLEAN_PATH = "/usr/bin:/bin"


@dataclass
class MakeRun:
    """`make run` in a pseudo-terminal of its own (its controlling terminal, as in a user's shell)."""

    pid: int
    terminal: int
    port: int
    redis_port: int
    data: Path
    output: list[str] = field(default_factory=list)
    status: int | None = None

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.terminal, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output.append(chunk.decode(errors="replace").replace("\r\n", "\n"))

    def poll(self) -> int | None:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def ctrl_c(self) -> None:
        os.killpg(os.tcgetpgrp(self.terminal), signal.SIGINT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return "".join(self.output)

    def pids(self, name: str) -> list[int]:
        return [int(pid) for pid in re.findall(rf"started {name} \(pid (\d+)\)", self.log())]

    def healthy(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def dispatches(self) -> int:
        return len(re.findall(r"Task tasks\.followup\.dispatch_due\[[^]]+\] succeeded", self.log()))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def make_run(tmp_path_factory):
    assert shutil.which("gunicorn", path=CLEAN_PATH) is None and shutil.which("celery", path=CLEAN_PATH) is None, \
        "the clean PATH must not already hold the project's commands"
    make = shutil.which("make", path=CLEAN_PATH)
    home = tmp_path_factory.mktemp("home")
    port, redis_port = free_port(), free_port()
    env = {"PATH": CLEAN_PATH, "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb", "PORT": str(port),
           "REDIS_PORT": str(redis_port), "HELPLINE_DATA_DIR": str(home / ".data"),
           "WEB_CONCURRENCY": "1", "WORKER_CONCURRENCY": "1", "FOLLOWUP_DISPATCH_SECONDS": "1",
           "HEARTBEAT_SECONDS": "1"}
    pid, terminal = pty.fork()
    if pid == 0:  # the child: exec at once
        os.chdir(REPO_ROOT)
        os.execve(make, [make, "-o", "install", "run"], env)
    run = MakeRun(pid, terminal, port, redis_port, home / ".data")
    threading.Thread(target=run._read, daemon=True).start()
    try:
        wait_until(lambda: run.healthy() or run.poll() is not None, 60, interval=0.1,
                   message="make run to answer /healthz")
        assert run.poll() is None, run.log()[-4000:]
        yield run
    finally:
        if run.poll() is None:
            for name in ("redis", "web", "worker", "beat"):
                for child in run.pids(name):
                    try:
                        os.killpg(child, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(terminal)


def test_everything_comes_up_from_a_clean_environment_and_answers_a_signed_call(make_run):
    token = (make_run.data / "dev-auth-token").read_text().strip()
    response = post_signed(HttpClient(make_run.url), "/voice", {"CallSid": "CA" + "1" * 32, "From": "+447400123456",
                                                                "To": "+443300000111"},
                           token=token, base=make_run.url)
    assert response.status_code == 200, response.status_code
    twiml = parse(response.data)
    assert twiml.find("Gather") is not None and any("999" in line or "9 9 9" in line for line in said(twiml))
    assert requests.get(make_run.url + "/healthz", timeout=5).json() == {
        "status": "ok", "note": "host not pinned: set PUBLIC_BASE_URL or ALLOWED_HOSTS"}
    metrics_token = (make_run.data / "metrics-token").read_text().strip()
    health = requests.get(make_run.url + "/healthz", timeout=5,
                          headers={"Authorization": f"Bearer {metrics_token}"}).json()
    assert health["status"] == "ok" and health["redis"] == "ok"
    # worker and beat alive after some seconds: beat's dispatches (every second) are run by the worker
    seen = make_run.dispatches()
    wait_until(lambda: make_run.dispatches() >= seen + 3, 30, interval=0.1, message="dispatches run by the worker")
    for name in ("redis", "web", "worker", "beat"):
        (pid,) = make_run.pids(name)
        assert alive(pid), name
    # and the heartbeat on-call alerts watch (deploy/alerts.yml) is moving
    def heartbeat() -> float:
        token = (make_run.data / "metrics-token").read_text().strip()  # make run's own, 0600
        text = requests.get(make_run.url + "/metrics", headers={"Authorization": f"Bearer {token}"},
                            timeout=5).text
        found = re.search(r"^helpline_worker_heartbeat_timestamp_seconds ([0-9.e+]+)$", text, re.M)
        return float(found.group(1)) if found else 0.0
    first = wait_until(heartbeat, 20, interval=0.2, message="a heartbeat")
    wait_until(lambda: heartbeat() > first, 20, interval=0.2, message="the heartbeat to move")


def test_local_data_is_private_and_redis_refuses_a_connection_without_its_password(make_run):
    requests.get(make_run.url + "/metrics", timeout=5)  # the web tier's metrics files exist too
    for root, _dirs, files in os.walk(make_run.data):
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700, root
        for name in files:
            path = os.path.join(root, name)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    for required in ("dev-auth-token", "followup-key", "redis.url", "redis/redis.conf", "redis/appendonly.aof"):
        assert (make_run.data / required).exists(), required
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=make_run.redis_port, socket_timeout=2).ping()
    url = (make_run.data / "redis.url").read_text().strip()
    assert redis.Redis.from_url(url, socket_timeout=2).ping()


def test_web_listens_on_loopback_and_redis_holds_no_secret_and_says_which_it_is(make_run):
    """Issue 21: `make run` listened on every interface, and its Redis had every secret in its
    environment (readable in /proc/<pid>/environ). The keys are made in .data like the others."""
    assert f"Listening at: http://127.0.0.1:{make_run.port}" in make_run.log()
    for required in ("state-secret", "flows-signing-key"):
        assert (make_run.data / required).exists(), required
    (redis_pid,) = make_run.pids("redis")
    environ = Path(f"/proc/{redis_pid}/environ").read_bytes()
    secrets = [(make_run.data / name).read_text().strip() for name in
               ("dev-auth-token", "followup-key", "state-secret", "flows-signing-key", "metrics-token")]
    for secret in secrets + ["TWILIO_AUTH_TOKEN", "REDIS_URL", "STATE_HASH_SECRET", "FOLLOWUP_ENCRYPTION_KEY"]:
        assert secret.encode() not in environ
    assert re.search(r"embedded Redis on 127\.0\.0\.1:\d+ with a password .*: \S+redis-server 6\.2", make_run.log())
    assert "warning: Redis 6.2" in make_run.log() and "known vulnerabilities" in make_run.log()


def test_a_current_redis_or_valkey_on_path_is_preferred_to_the_bundled_one(tmp_path, monkeypatch):
    from router.dev.embedded_redis import bundled_redis_server, choose_redis_server

    def fake(name: str, version: str) -> Path:
        path = tmp_path / name
        path.write_text(f"#!/bin/sh\necho 'Server v={version} sha=00000000:0 malloc=libc bits=64'\n")
        path.chmod(0o755)
        return path

    monkeypatch.setenv("PATH", str(tmp_path))
    assert choose_redis_server()[0] == bundled_redis_server()
    old = fake("redis-server", "6.0.16")
    assert choose_redis_server() == (str(old), (6, 0, 16)), "an old one on PATH, when no current one"
    valkey = fake("valkey-server", "8.0.2")
    assert choose_redis_server() == (str(valkey), (8, 0, 2)), "a current one first"


def test_a_killed_process_is_started_again_and_the_others_never_stop(make_run):
    (worker,) = make_run.pids("worker")
    (web,) = make_run.pids("web")
    (beat,) = make_run.pids("beat")
    os.killpg(worker, signal.SIGKILL)
    down_answers = []
    wait_until(lambda: down_answers.append(make_run.healthy()) or len(make_run.pids("worker")) == 2, 30,
               interval=0.1, message="the worker to be started again")
    assert f"worker (pid {worker}) exited" in make_run.log()
    assert all(down_answers), "the web tier answered while the worker was down"
    seen = make_run.dispatches()
    wait_until(lambda: make_run.dispatches() >= seen + 2, 45, interval=0.1, message="the new worker to work")
    assert make_run.pids("web") == [web] and make_run.pids("beat") == [beat], "nothing else was restarted"
    assert alive(web) and alive(beat) and make_run.healthy()


def test_ctrl_c_stops_everything_and_make_exits_0(make_run):
    children = [pid for name in ("redis", "web", "worker", "beat") for pid in make_run.pids(name)]
    make_run.ctrl_c()
    wait_until(lambda: make_run.poll() is not None, 60, interval=0.1, message="make run to end")
    assert make_run.status == 0, make_run.log()[-3000:]
    assert "make: ***" not in make_run.log(), "no 'Interrupt' or 'Error 130' from make"
    wait_until(lambda: not any(alive(pid) for pid in children), 10, message="every process to have ended")
    assert not (make_run.data / "redis.url").exists()
