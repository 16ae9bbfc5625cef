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
    trust_proxy: int = 0          # how many proxies in front add X-Forwarded-* (router/proxy.py)
    state_secret: bytes = field(default=b"", repr=False)
    followup_secret: bytes = field(default=b"", repr=False)
    port: int = 5000
    max_request_bytes: int = 64 * 1024
    flows_history_dir: Path | None = None  # numbered releases, outside FLOWS_DIR (lifecycle.History)
    flows_watch_seconds: float = 1.0       # how often each web worker looks for a new release; 0: never

    def history_dir(self) -> Path:
        """FLOWS_HISTORY_DIR, or a hidden folder beside the flow folder (never inside it)."""
        return self.flows_history_dir or self.flows_dir.parent / f".{self.flows_dir.name}-history"
    metrics_token: str | None = field(default=None, repr=False)
    followup_sender: str | None = None  # FOLLOWUP_SENDER: who follow-ups come from (router/followups.py)
    # TWILIO_MESSAGE_REDACTION: the account has Message Redaction (Twilio enables it on request); only
    # then are ContentRetention/AddressRetention sent, which Twilio refuses otherwise (30029/30030)
    message_redaction: bool = False
    # FOLLOWUP_COUNTRIES: ISO regions whose mobiles may be offered a text (error 21408 outside the
    # account's geo permissions; international rates): UK mobiles only by default
    followup_countries: frozenset[str] = frozenset({"GB"})
    # FOLLOWUP_VALIDITY_SECONDS: Twilio drops a follow-up still queued after this long (ValidityPeriod)
    followup_validity_seconds: int = 600
    # HELPLINE_NUMBERS: the helpline's own numbers (E.164, comma-separated): never a follow-up's sender;
    # the history sweep and `router twilio check` work on these (and the follow-up sender) only
    helpline_numbers: tuple[str, ...] = ()

    def state_key_secret(self) -> bytes:
        """The HMAC key for hashing phone numbers into Redis keys.

        STATE_HASH_SECRET if given; else derived from the auth token (already a secret the deployment
        keeps), so a stolen Redis dump cannot be reversed to numbers without it.
        """
        if self.state_secret:
            return self.state_secret
        base = (self.auth_token or "helpline-router-no-token").encode()
        return hmac.new(base, b"helpline-router/state-key/v1", hashlib.sha256).digest()

    def correlation_key(self) -> bytes:
        """The HMAC key for correlation ids in logs: from the deployment's secret, so someone who knows
        a CallSid (anyone who saw a Twilio console or a callback) cannot find its lines in the logs."""
        return hmac.new(self.state_key_secret(), b"helpline-router/correlation/v1", hashlib.sha256).digest()

    def followup_key(self) -> bytes:
        """The key that seals a pending follow-up's number and text in Redis (tasks/sealed.py).

        FOLLOWUP_ENCRYPTION_KEY if given; else derived from the state secret. Never stored in Redis."""
        return self.followup_secret or default_followup_key(self.state_key_secret())


def default_followup_key(state_secret: bytes) -> bytes:
    """The follow-up key of a deployment that sets no FOLLOWUP_ENCRYPTION_KEY."""
    return hmac.new(state_secret, b"helpline-router/followup-key/v1", hashlib.sha256).digest()


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
        trust_proxy=_proxies(env.get("TRUST_PROXY", "")),
        state_secret=(env.get("STATE_HASH_SECRET") or "").encode(),
        followup_secret=(env.get("FOLLOWUP_ENCRYPTION_KEY") or "").encode(),
        port=int(env.get("PORT") or 5000),
        flows_history_dir=Path(env["FLOWS_HISTORY_DIR"]).resolve() if env.get("FLOWS_HISTORY_DIR") else None,
        flows_watch_seconds=float(env.get("FLOWS_WATCH_SECONDS") or 1.0),
        metrics_token=env.get("METRICS_TOKEN") or None,
        followup_sender=(env.get("FOLLOWUP_SENDER") or "").strip() or None,
        message_redaction=_flag(env.get("TWILIO_MESSAGE_REDACTION", "")),
        followup_countries=frozenset(c.strip().upper() for c in (env.get("FOLLOWUP_COUNTRIES") or "GB").split(",")
                                     if c.strip()),
        followup_validity_seconds=min(max(int(env.get("FOLLOWUP_VALIDITY_SECONDS") or 600), 1), 36000),
        helpline_numbers=tuple(n.strip() for n in (env.get("HELPLINE_NUMBERS") or "").split(",") if n.strip()),
    )


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _proxies(value: str) -> int:
    """TRUST_PROXY: a number of proxies in front; 1/true/yes mean one; anything else none."""
    value = value.strip().lower()
    if value.isdecimal():
        return int(value)
    return 1 if value in {"true", "yes"} else 0
