"""Environment -> one immutable Settings object, read once, so nothing else touches os.environ.

The variables and their defaults are the runtime contract (shared/CONTRACT.md). Secrets are kept out of
repr() so a Settings object can be logged safely.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_API_BASE_URL = "https://api.twilio.com"
# Where the README's run command starts its embedded Redis (scripts/embedded_redis.py writes the URL).
EMBEDDED_REDIS_URL_FILE = REPO_ROOT / ".data" / "redis.url"


@dataclass(frozen=True)
class Settings:
    account_sid: str | None = field(default=None)
    auth_token: str | None = field(default=None, repr=False)
    api_base_url: str = DEFAULT_API_BASE_URL
    redis_url: str = "redis://127.0.0.1:6379/0"
    flows_dir: Path = REPO_ROOT / "flows"
    public_base_url: str | None = None
    trust_proxy: bool = False
    state_secret: bytes = field(default=b"", repr=False)
    port: int = 5000
    max_request_bytes: int = 64 * 1024
    followup_sender: str | None = None  # FOLLOWUP_SENDER: a Messaging Service SID or number (issue 12)

    def state_key_secret(self) -> bytes:
        """The HMAC key for hashing phone numbers into Redis keys.

        STATE_HASH_SECRET if given; else derived from the auth token (already a secret the deployment
        keeps), so a stolen Redis dump cannot be reversed to numbers without it.
        """
        if self.state_secret:
            return self.state_secret
        base = (self.auth_token or "helpline-router-no-token").encode()
        return hmac.new(base, b"helpline-router/state-key/v1", hashlib.sha256).digest()


def _default_redis_url(env: dict[str, str]) -> str:
    if env.get("REDIS_URL"):
        return env["REDIS_URL"]
    try:
        return EMBEDDED_REDIS_URL_FILE.read_text().strip() or Settings.redis_url
    except OSError:
        return Settings.redis_url


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build Settings from an environment mapping (os.environ by default)."""
    env = dict(os.environ if env is None else env)
    flows_dir = Path(env.get("FLOWS_DIR") or REPO_ROOT / "flows")
    if not flows_dir.is_absolute():
        flows_dir = (Path.cwd() / flows_dir).resolve()
    return Settings(
        account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
        auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
        api_base_url=(env.get("TWILIO_API_BASE_URL") or DEFAULT_API_BASE_URL).rstrip("/"),
        redis_url=_default_redis_url(env),
        flows_dir=flows_dir,
        public_base_url=(env.get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
        trust_proxy=env.get("TRUST_PROXY", "").lower() in {"1", "true", "yes"},
        state_secret=(env.get("STATE_HASH_SECRET") or "").encode(),
        port=int(env.get("PORT") or 5000),
        followup_sender=(env.get("FOLLOWUP_SENDER") or "").strip() or None,
    )
