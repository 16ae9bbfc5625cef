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
- Everything this module puts in Redis is signed with FLOWS_SIGNING_KEY and believed only when the
  signature holds (router/release_auth.py): Redis is transport, never an authority. A release's files
  are a fixed set of known names, checked and validated in memory before any is written.
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

from router import release_auth
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
    unknown = [name for name in files if name not in LIVE_FILES]
    if unknown:  # never a path, never a name of our choosing: only the flow files, inside `folder`
        raise ValueError(f"not flow file names: {', '.join(repr(n[:80]) for n in unknown)}")
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
        sweep_scratch(self.releases_dir, ".incoming-*")
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
    sweep_scratch(live.parent, f".{live.name}.new-*", f".{live.name}.old-*")
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


SCRATCH_AGE_SECONDS = 120   # a folder being written is minutes old at most: older ones were left by a kill


def sweep_scratch(parent: Path, *patterns: str) -> None:
    """Remove what a process killed mid-write left: staged folders matching `patterns` in `parent`,
    untouched for SCRATCH_AGE_SECONDS (the caller holds the history lock, so none is being written)."""
    import time

    for pattern in patterns:
        for leftover in Path(parent).glob(pattern):
            try:
                if leftover.is_dir() and not leftover.is_symlink() and \
                        time.time() - leftover.stat().st_mtime > SCRATCH_AGE_SECONDS:
                    shutil.rmtree(leftover, ignore_errors=True)
            except OSError:
                continue


def _exchange(a: Path, b: Path) -> bool:
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


# ------------------------------------------------------------------ the applied release in Redis
def publish(client: redis.Redis, release: Release, files: dict[str, bytes], previous: int | None = None, *,
            keys: release_auth.Keyring | None = None) -> None:
    """Tell every instance which release is applied (and give them its files), both signed (raises
    release_auth.Unsigned without a key). The files of the release it replaces are kept a week more, for
    instances that were down; then only the history has them."""
    keys = release_auth.keyring(keys)
    body = release_auth.signed(keys, release_auth.RELEASE_FILES, {
        "number": release.number, "files": {name: data.decode("utf-8") for name, data in files.items()}})
    record = release_auth.signed(keys, release_auth.RELEASE_RECORD, asdict(release))
    pipe = client.pipeline(transaction=True)
    pipe.set(RELEASE_KEY.format(release.number), body, ex=RECORD_TTL_SECONDS)
    pipe.set(APPLIED_KEY, record, ex=RECORD_TTL_SECONDS)
    if previous is not None and previous != release.number:
        pipe.expire(RELEASE_KEY.format(previous), SUPERSEDED_TTL_SECONDS)
    pipe.execute()


class Refused(Exception):
    """What Redis holds as the applied release (or its files) is not believed: unsigned, signed with
    another key, too large, or not a release. The message says which, without its content."""


def parse_release(raw: bytes | str | None, keys: release_auth.Keyring | None = None) -> Release | None:
    """The applied-release record: None if there is none; Refused unless signed with one of `keys`."""
    if not raw:
        return None
    record = release_auth.opened(release_auth.keyring(keys), release_auth.RELEASE_RECORD, raw,
                                 release_auth.MAX_RECORD_BYTES)
    if record is None:
        raise Refused("the applied-release record in Redis is not signed with this instance's "
                      "FLOWS_SIGNING_KEY")
    try:
        release = Release(**record)
    except TypeError:
        raise Refused("the applied-release record in Redis is not a release") from None
    if not isinstance(release.number, int) or not 0 < release.number < 10 ** 6 or \
            not all(isinstance(v, str) for v in (release.version, release.applied_at, release.who, release.note)):
        raise Refused("the applied-release record in Redis is not a release")
    return release


def read_applied(client: redis.Redis, keys: release_auth.Keyring | None = None) -> Release | None:
    """The applied release Redis names (None: none); raises Refused unless it is signed."""
    try:
        raw = release_auth.bounded_get(client, APPLIED_KEY, release_auth.MAX_RECORD_BYTES)
    except release_auth.TooLarge:
        raise Refused("the applied-release record in Redis is too large") from None
    return parse_release(raw, keys)


def applied_release(client: redis.Redis, keys: release_auth.Keyring | None = None) -> Release | None:
    """read_applied(), with a record that is not believed logged and taken as none."""
    try:
        return read_applied(client, keys)
    except Refused as exc:
        log.error("%s: ignored", exc)
        return None


def release_files(client: redis.Redis, number: int,
                  keys: release_auth.Keyring | None = None) -> dict[str, bytes] | None:
    """Release `number`'s files from Redis (None: not there), signed with that number, of known names
    and sizes; raises Refused otherwise. Nothing is written: the caller validates them in memory."""
    try:
        raw = release_auth.bounded_get(client, RELEASE_KEY.format(number), release_auth.MAX_RELEASE_BYTES)
    except release_auth.TooLarge:
        raise Refused(f"the files of release {number} in Redis are too large") from None
    if not raw:
        return None
    record = release_auth.opened(release_auth.keyring(keys), release_auth.RELEASE_FILES, raw,
                                 release_auth.MAX_RELEASE_BYTES)
    if record is None or record.get("number") != number or not isinstance(record.get("files"), dict) or \
            not all(isinstance(text, str) for text in record["files"].values()):
        raise Refused(f"the files of release {number} in Redis are not signed with this instance's "
                      "FLOWS_SIGNING_KEY")
    files = {str(name): text.encode("utf-8") for name, text in record["files"].items()}
    problems = release_auth.file_problems(files, LIVE_FILES, FILES)
    if problems:
        raise Refused(f"release {number} in Redis is refused: {'; '.join(problems[:3])}")
    return files


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


def follow(client: redis.Redis, live: Path, history: History,
           keys: release_auth.Keyring | None = None) -> Release | None:
    """If Redis names a release newer than this instance's newest, install it. Returns the applied
    release Redis names (None if there is none); raises redis errors for the caller to judge, and
    Refused when what Redis holds is not signed with `keys` (then nothing is written)."""
    applied = read_applied(client, keys)
    if applied is None:
        return None
    latest = history.latest()
    if latest is not None and (latest.number, latest.version) == (applied.number, applied.version):
        return applied
    if latest is not None and latest.number > applied.number:
        return applied  # applied here while Redis was away: this instance is ahead; apply again to share it
    files = release_files(client, applied.number, keys)
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
    """Why this instance's own checks refuse a release's files, or None: checked in memory, before
    anything is written anywhere."""
    return release_auth.validate_in_memory(files, Path("release"))


# ------------------------------------------------------------------ apply and rollback
def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def put_live(files: dict[str, bytes], flows: Flows, *, live: Path, history: History,
             client: redis.Redis | None, who: str, note: str, action: str = "apply",
             live_version: str | None = None) -> tuple[Release, str | None]:
    """Record a new numbered release of `files`, replace the live folder with it whole, and publish it.

    `live_version`: the version of the valid flows in the live folder now; if the history does not end
    with them (the first apply, or an edit made in place), they are recorded first, so a rollback can
    always return to what was live before. Returns the release and a warning when Redis could not be
    told (other instances then follow only once it is published again). The caller has validated
    `files` (router apply / rollback)."""
    applied = None
    warning = None
    if client is not None:
        try:
            applied = applied_release(client)
        except redis.RedisError as exc:
            warning = f"Redis is unavailable ({type(exc).__name__}): other instances will not follow"
    with history.locked():
        latest = history.latest()
        number = max(latest.number if latest else 0, applied.number if applied else 0) + 1
        if live_version not in (None, flows.version) and (latest is None or latest.version != live_version):
            history.add(read_files(live), Release(number, live_version, now_iso(), "(found live)",
                                                  "what was live before this change", "found live"))
            number += 1
        release = history.add(files, Release(number, flows.version, now_iso(), who, note, action))
        replace_folder(live, files)
    if client is not None and warning is None:
        try:
            publish(client, release, files, previous=applied.number if applied else None)
        except redis.RedisError as exc:
            warning = f"Redis is unavailable ({type(exc).__name__}): other instances will not follow"
        except release_auth.Unsigned:
            warning = ("FLOWS_SIGNING_KEY is not set here: the release is live on this machine only, and "
                       "other instances will not follow it (docs/deployment.md)")
    return release, warning


# ------------------------------------------------------------------ diversions
@dataclass(frozen=True)
class Diversion:
    service: str
    to: str
    until: datetime      # aware, UTC
    who: str = ""
    made_at: datetime | None = None   # signed with it: a diversion lasts at most MAX_DIVERSION from then

    def active(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(timezone.utc)) < self.until

    def line(self) -> str:
        return f"{self.service} -> {self.to} until {self.until.astimezone(LONDON):%a %d %b %Y %H:%M} (London)"


def divert(client: redis.Redis, service: str, to: str, until: datetime, who: str = "", *,
           keys: release_auth.Keyring | None = None) -> Diversion:
    """Send callers for `service` to `to` until `until`, on every worker within a second or so. Signed
    (raises release_auth.Unsigned without a key)."""
    keys = release_auth.keyring(keys)
    diversion = Diversion(service, to, until.astimezone(timezone.utc), who,
                          datetime.now(timezone.utc).replace(microsecond=0))
    current = diversions(client, keys)
    current[service] = diversion
    _write_diversions(client, current, keys)
    return diversion


def undivert(client: redis.Redis, service: str, *, keys: release_auth.Keyring | None = None) -> bool:
    keys = release_auth.keyring(keys)
    current = diversions(client, keys)
    if current.pop(service, None) is None:
        return False
    _write_diversions(client, current, keys)
    return True


def _diversion_record(d: Diversion) -> dict:
    return {"service": d.service, "to": d.to, "until": d.until.isoformat(), "who": d.who,
            "at": (d.made_at or d.until).isoformat()}


def _write_diversions(client: redis.Redis, current: dict[str, Diversion], keys: release_auth.Keyring) -> None:
    entries = {sid: release_auth.signed(keys, release_auth.DIVERSION, _diversion_record(d))
               for sid, d in current.items()}  # signed first: without a key nothing is changed
    pipe = client.pipeline(transaction=True)
    pipe.delete(DIVERSIONS_KEY)
    if current:
        pipe.hset(DIVERSIONS_KEY, mapping=entries)
        last = max(d.until for d in current.values())
        pipe.pexpireat(DIVERSIONS_KEY, int(last.timestamp() * 1000) + 1)
    pipe.execute()


def parse_diversions(raw: dict, now: datetime | None = None,
                     keys: release_auth.Keyring | None = None) -> tuple[dict[str, Diversion], int]:
    """The hash as Redis returns it -> (the diversions still in force, how many entries were refused).
    An entry is believed only when signed with `keys` for its own service, and only for MAX_DIVERSION
    from when it was made, whatever end it names: its length is capped when read, not only when made."""
    keys = release_auth.keyring(keys)
    now = now or datetime.now(timezone.utc)
    found, refused = {}, 0
    for sid, body in (raw or {}).items():
        sid = sid.decode() if isinstance(sid, bytes) else sid
        record = release_auth.opened(keys, release_auth.DIVERSION, body, release_auth.MAX_DIVERSION_BYTES)
        try:
            if record is None or record["service"] != sid:
                raise ValueError("not signed")
            made_at = datetime.fromisoformat(record["at"])
            diversion = Diversion(sid, str(record["to"]), datetime.fromisoformat(record["until"]),
                                  str(record.get("who", "")), made_at)
            if diversion.until.tzinfo is None or made_at.tzinfo is None:
                raise ValueError("naive time")
        except (ValueError, KeyError, TypeError):
            refused += 1
            continue
        if made_at > now + timedelta(minutes=5) or diversion.until - made_at > MAX_DIVERSION + timedelta(minutes=1):
            refused += 1
            continue
        if diversion.active(now):
            found[sid] = diversion
    return found, refused


def read_diversions(client: redis.Redis,
                    keys: release_auth.Keyring | None = None) -> tuple[dict[str, Diversion], int]:
    """(the diversions in force, how many entries in Redis were refused), read with a bound."""
    try:
        raw = release_auth.bounded_hgetall(client, DIVERSIONS_KEY, release_auth.MAX_DIVERSIONS,
                                           release_auth.MAX_DIVERSION_BYTES)
    except release_auth.TooLarge:
        return {}, 1
    return parse_diversions(raw, keys=keys)


def diversions(client: redis.Redis, keys: release_auth.Keyring | None = None) -> dict[str, Diversion]:
    """The diversions in force; entries not signed with `keys` are left out (and logged)."""
    found, refused = read_diversions(client, keys)
    if refused:
        log.error("%d diversion(s) in Redis are not signed with this instance's FLOWS_SIGNING_KEY (or last "
                  "longer than %d days): ignored", refused, MAX_DIVERSION.days)
    return found


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


def check_diversion(flows: Flows, service: str, to: str, until: datetime, now: datetime) -> list[str]:
    """Why a diversion cannot be made (empty: it can)."""
    problems = []
    for sid in (service, to):
        if sid not in flows.services:
            problems.append(f"{sid!r} is not a service in the live flows ({', '.join(sorted(flows.services))})")
    if service == to:
        problems.append("a service cannot be diverted to itself")
    if until <= now:
        problems.append(f"--until {until.astimezone(LONDON):%Y-%m-%d %H:%M} is in the past")
    elif until - now > MAX_DIVERSION:
        problems.append("a diversion lasts at most 7 days: for longer, change services.yaml and apply it")
    return problems
