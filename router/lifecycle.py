"""Putting flows live and keeping every worker on them: numbered releases, the atomic switch, rollback,
and diversions of a line that is down.

Why one module: the `router` CLI (apply, rollback, versions, divert) and the web process (which follows
what was applied and which lines are diverted) must agree on where releases live and what they are
called; neither may own the other.

Where things are:
- The history, on disk and outside the folder being edited (settings.history_dir()): releases/0001/,
  releases/0002/, ... each a whole copy of the flow files plus release.json (number, flows_version,
  time, who, note, action). Append-only: a rollback is a new release holding the old files. The newest
  release is the applied one, and the last good flows a web worker falls back to when the live folder
  is broken at start.
- The live folder (FLOWS_DIR) is only ever replaced whole (replace_folder): a reader sees the old files
  or the new ones, never a mix.
- Redis, so every instance follows one release: `router:flows:applied` (the release's details, small:
  each web worker reads it every second) and `router:flows:release:<n>` (its files, for instances that
  have not installed it yet). Both kept 400 days; a replaced release's files a week more.
  `router:flows:diversions` (service -> where to and until when) expires with the last diversion; each
  entry also carries its own end, so a diversion stops at its time even while another keeps the hash
  alive.
"""
from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import secrets
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import redis

from router.flowfile import FILES
from router.hours import LONDON
from router.model import Flows

log = logging.getLogger("router.lifecycle")

APPLIED_KEY = "router:flows:applied"
RELEASE_KEY = "router:flows:release:{}"
DIVERSIONS_KEY = "router:flows:diversions"
RECORD_TTL_SECONDS = 400 * 24 * 3600
SUPERSEDED_TTL_SECONDS = 7 * 24 * 3600
LIVE_FILES = tuple(FILES) + ("scenarios.yaml",)   # scenarios travel with the flows they check
DEFAULT_DIVERSION = timedelta(hours=12)
MAX_DIVERSION = timedelta(days=7)


# ------------------------------------------------------------------ releases on disk
@dataclass(frozen=True)
class Release:
    number: int
    version: str        # the flows' content hash, as /healthz shows it
    applied_at: str     # ISO time, UTC
    who: str
    note: str = ""
    action: str = "apply"  # apply | rollback to N

    def line(self) -> str:
        when = datetime.fromisoformat(self.applied_at).astimezone(LONDON)
        note = f'  "{self.note}"' if self.note else ""
        return f"{self.number:>4}  {when:%Y-%m-%d %H:%M} (London)  {self.version}  {self.action:<14} {self.who}{note}"


def read_files(folder: Path) -> dict[str, bytes]:
    """The flow files (and scenarios) of a folder, as bytes; missing ones are left out."""
    files = {}
    for name in LIVE_FILES:
        try:
            files[name] = (Path(folder) / name).read_bytes()
        except FileNotFoundError:
            continue
    return files


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
        os.utime(folder / name)


class History:
    """The numbered releases of one instance, in a folder of their own."""

    def __init__(self, home: Path):
        self.home = Path(home)
        self.releases_dir = self.home / "releases"

    def releases(self) -> list[Release]:
        found = [release for folder in self._folders() if (release := self._read(folder)) is not None]
        return sorted(found, key=lambda r: r.number)

    def latest(self) -> Release | None:
        """The newest release (read every second by each web worker: one file, not the whole history)."""
        for folder in reversed(self._folders()):
            release = self._read(folder)
            if release is not None:
                return release
        return None

    def get(self, number: int) -> Release | None:
        return self._read(self.folder(number)) if self.folder(number).exists() else None

    def _folders(self) -> list[Path]:
        return sorted((p for p in self.releases_dir.glob("[0-9]*") if p.name.isdigit()), key=lambda p: int(p.name))

    @staticmethod
    def _read(folder: Path) -> Release | None:
        try:
            return Release(**json.loads((folder / "release.json").read_text()))
        except (OSError, ValueError, TypeError):
            log.warning("release folder %s is unreadable; ignored", folder.name)
            return None

    def folder(self, number: int) -> Path:
        return self.releases_dir / f"{number:04d}"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One writer at a time across the processes of this machine (CLI, web workers)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def add(self, files: dict[str, bytes], release: Release) -> Release:
        """Store a release (the caller holds the lock). Written aside, then renamed into place whole."""
        self.releases_dir.mkdir(parents=True, exist_ok=True)
        staged = self.releases_dir / f".incoming-{os.getpid()}-{secrets.token_hex(4)}"
        write_files(staged, files)
        (staged / "release.json").write_text(json.dumps(asdict(release), indent=2) + "\n")
        target = self.folder(release.number)
        if target.exists():  # the same number from another instance: the applied record wins
            shutil.rmtree(target)
        os.rename(staged, target)
        return release


# ------------------------------------------------------------------ the live folder, replaced whole
def replace_folder(live: Path, files: dict[str, bytes]) -> None:
    """Make `live` hold exactly `files` in one step.

    The new folder is written beside the live one and the two are exchanged by one rename
    (Linux renameat2 RENAME_EXCHANGE), so a reader sees the old folder or the new one. Where that call
    is missing, two renames: for an instant the live folder is absent, which the app treats as any
    other refused change (it keeps serving)."""
    live = Path(live)
    if live.is_symlink():
        live = live.resolve()
    staged = live.parent / f".{live.name}.new-{secrets.token_hex(4)}"
    write_files(staged, files)
    if not live.exists():
        os.rename(staged, live)
        return
    if not _exchange(staged, live):
        retired = live.parent / f".{live.name}.old-{secrets.token_hex(4)}"
        os.rename(live, retired)
        os.rename(staged, live)
        staged = retired
    shutil.rmtree(staged, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


# ------------------------------------------------------------------ the applied release in Redis
def publish(client: redis.Redis, release: Release, files: dict[str, bytes], previous: int | None = None) -> None:
    """Tell every instance which release is applied (and give them its files). The files of the release
    it replaces are kept a week more, for instances that were down; then only the history has them."""
    pipe = client.pipeline(transaction=True)
    _queue_publish(pipe, release, files, previous)
    pipe.execute()


def _queue_publish(pipe, release: Release, files: dict[str, bytes], previous: int | None) -> None:
    body = json.dumps({name: data.decode("utf-8") for name, data in files.items()})
    pipe.set(RELEASE_KEY.format(release.number), body, ex=RECORD_TTL_SECONDS)
    pipe.set(APPLIED_KEY, json.dumps(asdict(release)), ex=RECORD_TTL_SECONDS)
    if previous is not None and previous != release.number:
        pipe.expire(RELEASE_KEY.format(previous), SUPERSEDED_TTL_SECONDS)


SERVING_KEY = "router:flows:serving:{}"
SERVING_TTL_SECONDS = 60


def report_serving(client: redis.Redis, worker: str, body: dict) -> None:
    """A web worker says what it serves (router status lists every report younger than a minute)."""
    client.set(SERVING_KEY.format(worker), json.dumps(body), ex=SERVING_TTL_SECONDS)


def serving_reports(client: redis.Redis) -> dict[str, dict]:
    keys = sorted(client.scan_iter(match=SERVING_KEY.format("*"), count=500))
    found = {}
    for key, raw in zip(keys, client.mget(keys) if keys else []):
        try:
            found[(key.decode() if isinstance(key, bytes) else key).split(":", 3)[3]] = json.loads(raw)
        except (TypeError, ValueError, IndexError):
            continue
    return found


def parse_release(raw: bytes | str | None) -> Release | None:
    if not raw:
        return None
    try:
        return Release(**json.loads(raw))
    except (ValueError, TypeError):
        log.warning("the applied-release record in Redis is unreadable; ignored")
        return None


def applied_release(client: redis.Redis) -> Release | None:
    return parse_release(client.get(APPLIED_KEY))


def release_files(client: redis.Redis, number: int) -> dict[str, bytes] | None:
    raw = client.get(RELEASE_KEY.format(number))
    if not raw:
        return None
    return {name: text.encode("utf-8") for name, text in json.loads(raw).items()}


def install(live: Path, history: History, release: Release, files: dict[str, bytes]) -> bool:
    """Make `release` this instance's applied release: into the history (if new) and the live folder.
    True if anything changed. Several workers may call this at once: the lock makes one do it."""
    with history.locked():
        known = history.get(release.number)
        if known is not None and known.version == release.version and \
                _same_flows(read_files(Path(live)), files):
            return False
        if known is None or known.version != release.version:
            history.add(files, release)
        if not _same_flows(read_files(Path(live)), files):
            replace_folder(live, files)
    log.info("installed release %s (flows_version %s) applied by %s", release.number, release.version,
             release.who)
    return True


def _same_flows(a: dict[str, bytes], b: dict[str, bytes]) -> bool:
    return all(a.get(name) == b.get(name) for name in FILES)


def follow(client: redis.Redis, live: Path, history: History) -> Release | None:
    """If Redis names a release newer than this instance's newest, install it. Returns the applied
    release Redis names (None if there is none); raises redis errors for the caller to judge."""
    applied = applied_release(client)
    if applied is None:
        return None
    latest = history.latest()
    if latest is not None and (latest.number, latest.version) == (applied.number, applied.version):
        return applied
    if latest is not None and latest.number > applied.number:
        return applied  # applied here while Redis was away: this instance is ahead; apply again to share it
    files = release_files(client, applied.number)
    if files is None:
        log.warning("release %s is applied but its files are not in Redis; staying on what is live",
                    applied.number)
        return applied
    if (applied.number, applied.version) in _REFUSED_HERE:
        return applied
    problem = _refused_here(files)
    if problem:  # e.g. a release made by newer code, mid-deploy: never overwrite good flows with it
        _REFUSED_HERE.add((applied.number, applied.version))
        log.error("release %s is applied elsewhere but this instance refuses its flows (%s); staying on "
                  "what is live here", applied.number, problem)
        return applied
    install(live, history, applied, files)
    return applied


_REFUSED_HERE: set[tuple[int, str]] = set()  # (number, version) refused here: checked once, logged once


def _refused_here(files: dict[str, bytes]) -> str | None:
    """Why this instance's own checks refuse a release's files, or None: checked in a scratch folder
    before anything live is touched."""
    import tempfile

    from router.checks import load_checked  # the checks import the engine; this module is below them
    from router.flowfile import FlowError

    with tempfile.TemporaryDirectory(prefix="helpline-release-") as scratch:
        folder = Path(scratch) / "flows"
        write_files(folder, files)
        try:
            load_checked(folder)
        except FlowError as exc:
            return f"{len(exc.problems)} problem(s), the first: {exc.problems[0]}" if exc.problems else str(exc)
    return None


# ------------------------------------------------------------------ apply and rollback
def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class StaleBase(Exception):
    """Another release was applied after the one this change was made from (or checked against): putting
    this one live would undo it. `current` is the release applied now."""

    def __init__(self, current: Release | None):
        super().__init__(f"release {current.number if current else 'none'} is applied now")
        self.current = current


def current_release(client: redis.Redis | None, history: History) -> Release | None:
    """The newest release anyone applied: Redis's record or this instance's history, whichever is newer.
    Raises redis errors (the caller decides whether working without Redis is acceptable)."""
    latest = history.latest()
    applied = applied_release(client) if client is not None else None
    if applied is not None and (latest is None or applied.number > latest.number):
        return applied
    return latest


def put_live(files: dict[str, bytes], flows: Flows, *, live: Path, history: History,
             client: redis.Redis | None, who: str, note: str, action: str = "apply",
             live_version: str | None = None, expected: int | None | type(...) = ...) -> tuple[Release, str | None]:
    """Record a new numbered release of `files`, publish it, and replace the live folder with it whole.

    `expected`: the number of the release the operator saw as applied (None: none yet) when they were
    shown the changes. If another apply got in since, StaleBase is raised and nothing changes: two
    applies at once cannot both win. On one machine the history's lock orders them; across machines
    the record in Redis is swapped only if it still names `expected` (WATCH/MULTI, a compare-and-swap),
    and it is swapped before anything is written here, so the loser changes nothing anywhere.

    `live_version`: the version of the valid flows in the live folder now; if the history does not end
    with them (the first apply, or an edit made in place), they are recorded first, so a rollback can
    always return to what was live before. Returns the release and a warning when Redis could not be
    told (then `router publish` shares it once Redis is back; `router status` says so). The caller has
    validated `files` (router apply / rollback)."""
    warning = None
    with history.locked():
        latest = history.latest()
        applied = None
        if client is not None:
            try:
                applied = applied_release(client)
            except redis.RedisError as exc:
                warning = unpublished_warning(type(exc).__name__)
        current = applied if applied is not None and (latest is None or applied.number > latest.number) else latest
        if expected is not ... and (current.number if current else None) != expected:
            raise StaleBase(current)
        number = (current.number if current else 0) + 1
        found_live = None
        if live_version not in (None, flows.version) and (latest is None or latest.version != live_version):
            found_live = Release(number, live_version, now_iso(), "(found live)", "what was live before this change",
                                 "found live")
            number += 1
        release = Release(number, flows.version, now_iso(), who, note, action)
        if client is not None and warning is None:
            try:
                publish_if(client, release, files, applied)
            except redis.WatchError:
                raise StaleBase(applied_release(client)) from None
            except redis.RedisError as exc:
                warning = unpublished_warning(type(exc).__name__)
        try:
            if found_live is not None:
                history.add(read_files(live), found_live)
            history.add(files, release)
            replace_folder(live, files)
        except OSError as exc:
            raise NotInstalled(release, exc) from exc
    return release, warning


class NotInstalled(Exception):
    """The release is recorded (in Redis, when reachable) but this machine's history or live folder could
    not be written: its web workers install it themselves once they can (lifecycle.follow)."""

    def __init__(self, release: Release, cause: OSError):
        super().__init__(f"{type(cause).__name__}: {cause.strerror or cause}")
        self.release = release


def unpublished_warning(why: str) -> str:
    return (f"Redis could not be reached ({why}): this instance serves the change, but other "
            "instances do not know of it. Once Redis is back, run `router publish` (router status shows this)")


def publish_if(client: redis.Redis, release: Release, files: dict[str, bytes], seen: Release | None) -> None:
    """publish(), only if the applied record is still `seen` (redis.WatchError otherwise)."""
    with client.pipeline(transaction=True) as pipe:
        pipe.watch(APPLIED_KEY)
        if parse_release(pipe.get(APPLIED_KEY)) != seen:
            pipe.unwatch()
            raise redis.WatchError("the applied release changed")
        pipe.multi()
        _queue_publish(pipe, release, files, seen.number if seen else None)
        pipe.execute()


# ------------------------------------------------------------------ diversions
@dataclass(frozen=True)
class Diversion:
    service: str
    to: str
    until: datetime      # aware, UTC
    who: str = ""

    def active(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(timezone.utc)) < self.until

    def line(self) -> str:
        return f"{self.service} -> {self.to} until {self.until.astimezone(LONDON):%a %d %b %Y %H:%M} (London)"


def divert(client: redis.Redis, service: str, to: str, until: datetime, who: str = "") -> Diversion:
    """Send callers for `service` to `to` until `until`, on every worker within a second or so."""
    diversion = Diversion(service, to, until.astimezone(timezone.utc), who)
    current = diversions(client)
    current[service] = diversion
    _write_diversions(client, current)
    return diversion


def undivert(client: redis.Redis, service: str) -> bool:
    current = diversions(client)
    if current.pop(service, None) is None:
        return False
    _write_diversions(client, current)
    return True


def _write_diversions(client: redis.Redis, current: dict[str, Diversion]) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.delete(DIVERSIONS_KEY)
    if current:
        pipe.hset(DIVERSIONS_KEY, mapping={sid: json.dumps({"to": d.to, "until": d.until.isoformat(), "who": d.who})
                                           for sid, d in current.items()})
        last = max(d.until for d in current.values())
        pipe.pexpireat(DIVERSIONS_KEY, int(last.timestamp() * 1000) + 1)
    pipe.execute()


def parse_diversions(raw: dict, now: datetime | None = None) -> dict[str, Diversion]:
    """The hash as Redis returns it -> the diversions still in force."""
    found = {}
    for sid, body in (raw or {}).items():
        sid = sid.decode() if isinstance(sid, bytes) else sid
        try:
            data = json.loads(body)
            diversion = Diversion(sid, data["to"], datetime.fromisoformat(data["until"]), data.get("who", ""))
        except (ValueError, KeyError, TypeError):
            continue
        if diversion.active(now):
            found[sid] = diversion
    return found


def diversions(client: redis.Redis) -> dict[str, Diversion]:
    return parse_diversions(client.hgetall(DIVERSIONS_KEY))


def diverted(flows: Flows, active: dict[str, Diversion]) -> Flows:
    """The same flows with each diverted service answered by the service it is diverted to: a caller
    choosing it is put through to (or texted the details of) the other, and fallbacks to it go there too.
    Diversions naming a service these flows do not have are ignored."""
    usable = {sid: d for sid, d in active.items() if sid in flows.services and d.to in flows.services}
    if not usable:
        return flows
    services = dict(flows.services)
    for sid, diversion in usable.items():
        services[sid] = flows.services[diversion.to]
    return Flows(config=flows.config, services=services, start=flows.start, nodes=flows.nodes,
                 phrases=flows.phrases, version=flows.version)
