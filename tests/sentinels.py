"""A Redis primary, one replica and three Sentinels as real server processes on 127.0.0.1, for tests.

Every one is the same `redis-server` binary the suite uses (router.dev.embedded_redis.find_redis_server);
a Sentinel is that binary started with `--sentinel` on a config file it may rewrite, as Redis documents
(https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/: "redis-server
/path/to/sentinel.conf --sentinel"; the file is rewritten with what the Sentinel learns). Everything has
a password, as in production (docs/deployment.md), so the `sentinel://:PASSWORD@...` form of REDIS_URL
is what the app is given. The timings are short so that a test sees a failover within seconds:
`down-after-milliseconds` (how long a silent primary takes to be called down) and `failover-timeout`
(how long a failover may take before another Sentinel tries again) come from the constructor.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from router.dev.embedded_redis import PRIVATE_UMASK, RedisServer, find_redis_server, free_port, private_dir, write_private

MASTER_NAME = "helpline"
PASSWORD = "sentinel-test-password-0123456789"


class ReplicatedRedis(RedisServer):
    """RedisServer with the settings every member of a replicated set needs: the password to follow a
    primary (masterauth), and, for a replica, the primary it starts by following."""

    def __init__(self, data_dir: Path, replica_of: int | None = None):
        super().__init__(data_dir, port=free_port(), persist=False, password=PASSWORD)
        self.replica_of = replica_of

    def command(self) -> list[str]:
        command = super().command()
        conf = Path(command[1])
        extra = [f"masterauth {PASSWORD}"]
        if self.replica_of:
            extra.append(f"replicaof 127.0.0.1 {self.replica_of}")
        write_private(conf, conf.read_text() + "\n".join(extra) + "\n")
        return command


@dataclass
class Sentinel:
    data_dir: Path
    primary_port: int
    down_after_ms: int
    failover_timeout_ms: int
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> "Sentinel":
        private_dir(self.data_dir)
        conf = self.data_dir / "sentinel.conf"
        write_private(conf, "\n".join([
            f"port {self.port}", "bind 127.0.0.1", "daemonize no", "loglevel warning",
            f'dir "{self.data_dir.resolve()}"',
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary_port} 2",   # quorum 2 of 3
            f"sentinel auth-pass {MASTER_NAME} {PASSWORD}",
            f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}",
            f"sentinel failover-timeout {MASTER_NAME} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {MASTER_NAME} 1"]) + "\n")
        self.process = subprocess.Popen([find_redis_server(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, umask=PRIVATE_UMASK)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class SentinelCluster:
    """The primary, the replica and three Sentinels watching them."""

    folder: Path
    down_after_ms: int = 1000
    failover_timeout_ms: int = 3000
    primary: ReplicatedRedis | None = None
    replica: ReplicatedRedis | None = None
    sentinels: list[Sentinel] = field(default_factory=list)

    def start(self, timeout: float = 30.0) -> "SentinelCluster":
        self.primary = ReplicatedRedis(self.folder / "primary").start()
        self.replica = ReplicatedRedis(self.folder / "replica", replica_of=self.primary.port).start()
        self.sentinels = [Sentinel(self.folder / f"sentinel{n}", self.primary.port, self.down_after_ms,
                                   self.failover_timeout_ms).start() for n in range(3)]
        self.wait(self.ready, timeout, "the replica in sync and every Sentinel knowing it and the other two")
        return self

    @property
    def url(self) -> str:
        """REDIS_URL for web, worker and beat: Celery's Sentinel form plus the master's name."""
        first, *rest = self.sentinels
        return ";".join([f"sentinel://:{PASSWORD}@127.0.0.1:{first.port}/0",
                         *[f"sentinel://127.0.0.1:{s.port}" for s in rest]]) + f"?master_name={MASTER_NAME}"

    def ready(self) -> bool:
        try:
            if self.replica.client().info("replication").get("master_link_status") != "up":
                return False
            for sentinel in self.sentinels:
                client = sentinel.client()
                replicas = client.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
                others = client.execute_command("SENTINEL", "SENTINELS", MASTER_NAME)
                if len(others) != 2 or not any(_fields(r).get("master-link-status") == "ok" for r in replicas):
                    return False
            return True
        except (redis.RedisError, OSError):
            return False

    def master_port(self) -> int | None:
        """The primary's port as a majority of the Sentinels name it now (None if they do not agree)."""
        named = []
        for sentinel in self.sentinels:
            try:
                address = sentinel.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                named.append(int(address[1]) if address else None)
            except (redis.RedisError, OSError):
                named.append(None)
        for port in set(named):
            if port is not None and named.count(port) >= 2:
                return port
        return None

    def replica_caught_up(self) -> bool:
        """Everything the primary holds has reached the replica (so a failover now loses nothing)."""
        try:
            primary = self.primary.client().info("replication")
            replica = self.replica.client().info("replication")
        except (redis.RedisError, OSError):
            return False
        return replica.get("slave_repl_offset", -1) >= primary.get("master_repl_offset", 0)

    def kill_primary(self) -> None:
        """kill -9: no shutdown, no last words to the replica or the Sentinels."""
        self.primary.stop(kill=True)

    def promoted(self) -> bool:
        """The replica has been made primary, and the Sentinels say so."""
        try:
            role = self.replica.client().info("replication").get("role")
        except (redis.RedisError, OSError):
            return False
        return role == "master" and self.master_port() == self.replica.port

    @staticmethod
    def wait(condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.05)

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in (self.replica, self.primary):
            if server is not None:
                server.stop(kill=True)


def _fields(flat) -> dict:
    """SENTINEL REPLICAS answers each replica as a flat list of name, value, name, value ..."""
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2]))
