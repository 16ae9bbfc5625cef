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

from router.embedded_redis import RedisServer
from router.settings import EMBEDDED_REDIS_URL_FILE, REPO_ROOT


def main() -> int:
    env = dict(os.environ)
    data = REPO_ROOT / ".data"
    data.mkdir(exist_ok=True)
    server = None
    if not env.get("REDIS_URL"):
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


if __name__ == "__main__":
    sys.exit(main())
