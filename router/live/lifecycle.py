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
  signature holds (router/live/signing.py): Redis is transport, never an authority. A release's files
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

from router.live import signing as release_auth
from router.definition.flowfile import FILES
from router.definition.hours import LONDON
from router.definition.model import Flows

log = logging.getLogger("router.live.lifecycle")

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
    body, record = _signed_release(release, files, keys)
    pipe = client.pipeline(transaction=True)
    _queue_publish(pipe, release, body, record, previous)
    pipe.execute()


def _signed_release(release: Release, files: dict[str, bytes],
                    keys: release_auth.Keyring | None) -> tuple[str, str]:
    keys = release_auth.keyring(keys)
    body = release_auth.signed(keys, release_auth.RELEASE_FILES, {
        "number": release.number, "files": {name: data.decode("utf-8") for name, data in files.items()}})
    return body, release_auth.signed(keys, release_auth.RELEASE_RECORD, asdict(release))


def _queue_publish(pipe, release: Release, body: str, record: str, previous: int | None) -> None:
    pipe.set(RELEASE_KEY.format(release.number), body, ex=RECORD_TTL_SECONDS)
    pipe.set(APPLIED_KEY, record, ex=RECORD_TTL_SECONDS)
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
            except release_auth.Unsigned:
                warning = ("FLOWS_SIGNING_KEY is not set here: the release is live on this machine only, and "
                           "other instances will not follow it (docs/deployment.md); set it, then run "
                           "`router publish`")
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


def publish_if(client: redis.Redis, release: Release, files: dict[str, bytes], seen: Release | None, *,
               keys: release_auth.Keyring | None = None) -> None:
    """publish(), only if the applied record is still `seen` (redis.WatchError otherwise): the
    compare-and-swap two applies meet at. Signed first: without a key (release_auth.Unsigned) nothing is
    read or written."""
    body, record = _signed_release(release, files, keys)
    with client.pipeline(transaction=True) as pipe:
        pipe.watch(APPLIED_KEY)
        now = None
        if (pipe.strlen(APPLIED_KEY) or 0) <= release_auth.MAX_RECORD_BYTES:
            try:
                now = parse_release(pipe.get(APPLIED_KEY), keys)
            except Refused:
                now = None  # as applied_release() took it: not believed, so not a release to keep
        if now != seen:
            pipe.unwatch()
            raise redis.WatchError("the applied release changed")
        pipe.multi()
        _queue_publish(pipe, release, body, record, seen.number if seen else None)
        pipe.execute()


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
