"""Environment -> one immutable Settings object, read once, so nothing else touches os.environ.

The variables and their defaults are the runtime contract (shared/CONTRACT.md). Secrets are kept out of
repr() so a Settings object can be logged safely.

The keys (STATE_HASH_SECRET, FOLLOWUP_ENCRYPTION_KEY, FLOWS_SIGNING_KEY) are given explicitly, never
derived from another secret: a key derived from the auth token changed whenever the token was rotated,
and then a STOP no longer found the follow-ups booked before it while the worker could still send them.
Each takes a comma-separated list for rotation: the first one writes (hashes, seals, signs), every one
is tried when reading, so a key is retired only once nothing made with it can still be pending.
`make run` makes all three in .data; every other process refuses to start without the first two
(require_secrets(), called by the web and worker processes at start).

Production never reads a development file: with no REDIS_URL the default URL is used. `make run`
(router/dev/run.py) gives every process it starts REDIS_URL; a CLI tool run by hand beside it finds the
embedded Redis through router/dev, not here.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_API_BASE_URL = "https://api.twilio.com"
BEAT_SCHEDULE_FILE = "celerybeat-schedule"
MIN_SECRET_CHARS = 32   # the contract: random strings of at least 32 characters


class MissingSecret(RuntimeError):
    """A key this process needs is not set (or too short): it refuses to start rather than guess one."""


@dataclass(frozen=True)
class Settings:
    account_sid: str | None = field(default=None)
    auth_token: str | None = field(default=None, repr=False)
    api_base_url: str = DEFAULT_API_BASE_URL
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)  # may hold a password
    flows_dir: Path = REPO_ROOT / "flows"
    public_base_url: str | None = None
    allowed_hosts: tuple[str, ...] = ()   # ALLOWED_HOSTS: host names a signed URL may name (without PUBLIC_BASE_URL)
    trust_proxy: int = 0          # how many proxies in front add X-Forwarded-* (router/web/proxy.py)
    state_secrets: tuple[bytes, ...] = field(default=(), repr=False)     # STATE_HASH_SECRET, newest first
    followup_secrets: tuple[bytes, ...] = field(default=(), repr=False)  # FOLLOWUP_ENCRYPTION_KEY, newest first
    flows_signing_keys: tuple[bytes, ...] = field(default=(), repr=False)  # FLOWS_SIGNING_KEY (release_auth)
    port: int = 5000
    max_request_bytes: int = 64 * 1024
    request_body_seconds: float = 5.0      # REQUEST_BODY_SECONDS: a body not in by then gets 408 (body_deadline)
    flows_history_dir: Path | None = None  # numbered releases, outside FLOWS_DIR (lifecycle.History)
    flows_watch_seconds: float = 1.0       # how often each web worker looks for a new release; 0: never

    def host_pinned(self) -> bool:
        """Whether the host a webhook was signed for is pinned (PUBLIC_BASE_URL or ALLOWED_HOSTS): if not,
        the Host header is believed, and a request Twilio signed for another app on the same account,
        replayed here with that app's Host, would be accepted."""
        return bool(self.public_base_url or self.allowed_hosts)

    def history_dir(self) -> Path:
        """FLOWS_HISTORY_DIR, or a hidden folder beside the flow folder (never inside it)."""
        return self.flows_history_dir or self.flows_dir.parent / f".{self.flows_dir.name}-history"
    metrics_token: str | None = field(default=None, repr=False)
    followup_sender: str | None = None  # FOLLOWUP_SENDER: who follow-ups come from (router/web/followups.py)
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

    # -- the workers' pace (tasks/celery.py) and the store's leases: tests run them faster --
    # CELERY_VISIBILITY_TIMEOUT: a task taken by a worker that then died is handed to another after this
    # long. Tasks take seconds; scheduled follow-ups wait in Redis (not as ETA tasks), so this can be short.
    celery_visibility_timeout: float = 30.0
    followup_dispatch_seconds: float = 10.0   # FOLLOWUP_DISPATCH_SECONDS: beat's dispatch of due follow-ups
    history_sweep_seconds: float = 300.0      # HISTORY_SWEEP_SECONDS: beat's sweep for records left at Twilio
    # DELETION_DRAIN_SECONDS: beat's drain of deletions, the safety net for a kick that was lost
    deletion_drain_seconds: float = 10.0
    heartbeat_seconds: float = 15.0           # HEARTBEAT_SECONDS: beat's heartbeat task (tasks/health.py)
    task_retry_base_seconds: float = 1.0      # TASK_RETRY_BASE_SECONDS: the first retry's wait (tasks/retry.py)
    # SENT_FINAL_AFTER_SECONDS: a message left 'sent' this long is taken as final by the sweep
    sent_final_after_seconds: float = 6 * 3600.0
    followup_lock_seconds: int = 20           # FOLLOWUP_LOCK_SECONDS: a claimed follow-up's lock (store)
    followup_lease_seconds: int = 120         # FOLLOWUP_LEASE_SECONDS: a dispatched follow-up's lease (store)
    deletion_wait_seconds: float = 60.0       # DELETION_WAIT_SECONDS: Twilio asks for a minute before a delete
    deletion_lease_seconds: float = 60.0      # DELETION_LEASE_SECONDS: a leased deletion's lease (store)
    # CELERY_BEAT_SCHEDULE, else $XDG_STATE_HOME or ~/.local/state: beat's schedule file (tasks/beat_schedule.py)
    beat_schedule: Path | None = None
    # -- the processes around the app --
    prometheus_multiproc_dir: Path | None = None  # PROMETHEUS_MULTIPROC_DIR: gunicorn workers' metrics files
    web_connections: int = 1000               # WEB_CONNECTIONS: connections per gunicorn worker (gunicorn_conf)
    operator: str | None = None               # ROUTER_OPERATOR: who an operator's change is recorded as
    # REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE): the CA bundle Twilio's REST client verifies with
    ca_bundle: str | None = None

    def state_key_secret(self) -> bytes:
        """The HMAC key for hashing phone numbers into Redis keys (the first STATE_HASH_SECRET)."""
        return self.state_key_secrets()[0]

    def state_key_secrets(self) -> tuple[bytes, ...]:
        """Every STATE_HASH_SECRET still read (newest first): a STOP looks for follow-ups under each."""
        if not self.state_secrets:
            raise MissingSecret("STATE_HASH_SECRET is not set: give every web and worker process the same "
                                f"random string of at least {MIN_SECRET_CHARS} characters (docs/deployment.md)")
        return self.state_secrets

    def correlation_key(self) -> bytes:
        """The HMAC key for correlation ids in logs: from the deployment's secret, so someone who knows
        a CallSid (anyone who saw a Twilio console or a callback) cannot find its lines in the logs."""
        return hmac.new(self.state_key_secret(), b"helpline-router/correlation/v1", hashlib.sha256).digest()

    def followup_key(self) -> bytes:
        """The key that seals a pending follow-up's number and text in Redis (router/store/sealing.py): the first
        FOLLOWUP_ENCRYPTION_KEY. Never stored in Redis."""
        return self.followup_keys()[0]

    def followup_keys(self) -> tuple[bytes, ...]:
        """Every FOLLOWUP_ENCRYPTION_KEY still read (newest first): a follow-up sealed with an older one
        is still sent after a rotation."""
        if not self.followup_secrets:
            raise MissingSecret("FOLLOWUP_ENCRYPTION_KEY is not set: give every web and worker process the "
                                f"same random string of at least {MIN_SECRET_CHARS} characters "
                                "(docs/deployment.md)")
        return self.followup_secrets

    def require_secrets(self) -> None:
        """Raise MissingSecret unless both keys are set and long enough: called at the start of the web
        and worker processes, so a deployment without them fails at once, not at the first text."""
        for name, keys in (("STATE_HASH_SECRET", self.state_key_secrets()),
                           ("FOLLOWUP_ENCRYPTION_KEY", self.followup_keys())):
            if any(len(key) < MIN_SECRET_CHARS for key in keys):
                raise MissingSecret(f"{name} must be a random string of at least {MIN_SECRET_CHARS} characters")

    def with_throwaway_secrets(self) -> "Settings":
        """These settings with random keys where none is set: for a local simulation only (router
        simulate), whose state is thrown away when it ends."""
        import dataclasses

        return dataclasses.replace(
            self, state_secrets=self.state_secrets or (secrets.token_urlsafe(32).encode(),),
            followup_secrets=self.followup_secrets or (secrets.token_urlsafe(32).encode(),))


def split_keys(value: str | None) -> tuple[bytes, ...]:
    """'new,old' -> (b'new', b'old'): the first writes, all are read. Blanks are dropped."""
    return tuple(part.strip().encode() for part in (value or "").split(",") if part.strip())


def beat_schedule_path(env: dict[str, str]) -> Path:
    """Beat's schedule file: CELERY_BEAT_SCHEDULE, else a private folder of the user's own
    ($XDG_STATE_HOME or ~/.local/state, then helpline-router/; tasks/beat_schedule.py checks it)."""
    if env.get("CELERY_BEAT_SCHEDULE"):
        return Path(env["CELERY_BEAT_SCHEDULE"])
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]) / "helpline-router" / BEAT_SCHEDULE_FILE
    try:
        home = Path(env.get("HOME") or Path.home())
    except RuntimeError:  # no home at all (an arbitrary container user): the working folder, still checked
        return Path(BEAT_SCHEDULE_FILE).resolve()
    return home / ".local" / "state" / "helpline-router" / BEAT_SCHEDULE_FILE


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
        redis_url=env.get("REDIS_URL") or Settings.redis_url,
        flows_dir=flows_dir,
        public_base_url=(env.get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
        allowed_hosts=tuple(h.strip().lower() for h in (env.get("ALLOWED_HOSTS") or "").split(",") if h.strip()),
        trust_proxy=_proxies(env.get("TRUST_PROXY", "")),
        state_secrets=split_keys(env.get("STATE_HASH_SECRET")),
        followup_secrets=split_keys(env.get("FOLLOWUP_ENCRYPTION_KEY")),
        flows_signing_keys=split_keys(env.get("FLOWS_SIGNING_KEY")),
        port=int(env.get("PORT") or 5000),
        request_body_seconds=float(env.get("REQUEST_BODY_SECONDS") or 5.0),
        flows_history_dir=Path(env["FLOWS_HISTORY_DIR"]).resolve() if env.get("FLOWS_HISTORY_DIR") else None,
        flows_watch_seconds=float(env.get("FLOWS_WATCH_SECONDS") or 1.0),
        metrics_token=env.get("METRICS_TOKEN") or None,
        followup_sender=(env.get("FOLLOWUP_SENDER") or "").strip() or None,
        message_redaction=_flag(env.get("TWILIO_MESSAGE_REDACTION", "")),
        followup_countries=frozenset(c.strip().upper() for c in (env.get("FOLLOWUP_COUNTRIES") or "GB").split(",")
                                     if c.strip()),
        followup_validity_seconds=min(max(int(env.get("FOLLOWUP_VALIDITY_SECONDS") or 600), 1), 36000),
        helpline_numbers=tuple(n.strip() for n in (env.get("HELPLINE_NUMBERS") or "").split(",") if n.strip()),
        celery_visibility_timeout=float(env.get("CELERY_VISIBILITY_TIMEOUT") or 30),
        followup_dispatch_seconds=float(env.get("FOLLOWUP_DISPATCH_SECONDS") or 10),
        history_sweep_seconds=float(env.get("HISTORY_SWEEP_SECONDS") or 300),
        deletion_drain_seconds=float(env.get("DELETION_DRAIN_SECONDS") or 10),
        heartbeat_seconds=float(env.get("HEARTBEAT_SECONDS") or 15),
        task_retry_base_seconds=float(env.get("TASK_RETRY_BASE_SECONDS") or 1.0),
        sent_final_after_seconds=float(env.get("SENT_FINAL_AFTER_SECONDS") or 6 * 3600),
        followup_lock_seconds=int(env.get("FOLLOWUP_LOCK_SECONDS") or 20),
        followup_lease_seconds=int(env.get("FOLLOWUP_LEASE_SECONDS") or 120),
        deletion_wait_seconds=float(env.get("DELETION_WAIT_SECONDS") or 60),
        deletion_lease_seconds=float(env.get("DELETION_LEASE_SECONDS") or 60),
        beat_schedule=beat_schedule_path(env),
        prometheus_multiproc_dir=Path(env["PROMETHEUS_MULTIPROC_DIR"]) if env.get("PROMETHEUS_MULTIPROC_DIR") else None,
        web_connections=int(env.get("WEB_CONNECTIONS") or 1000),
        operator=env.get("ROUTER_OPERATOR") or None,
        ca_bundle=env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or None,
    )


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _proxies(value: str) -> int:
    """TRUST_PROXY: a number of proxies in front; 1/true/yes mean one; anything else none."""
    value = value.strip().lower()
    if value.isdecimal():
        return int(value)
    return 1 if value in {"true", "yes"} else 0
