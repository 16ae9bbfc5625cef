"""The flows in use by one web worker: never none, swapped atomically, the same release as every other
worker within seconds.

Each request takes one Flows object (store.current()) and uses only it, so no request ever sees half a
change. What is served, in order of preference:
1. the live folder (FLOWS_DIR) when it validates, or, when a release another instance applied was
   installed into the history after the live folder last changed, that release, from the history
   (router/live/following.py): a web worker never rewrites the live folder;
2. else the newest release in the history (router/live/history.py) that validates: the last good flows this
   or any instance applied, kept outside the folder being edited;
3. else nothing, and every signed request gets the safety answer (app.py's error handler).
A worker never fails to start over flows: a refusal is logged one readable line per problem and shown
by /healthz as `degraded`, still answering 200.

A watcher thread (every settings.flows_watch_seconds, with or without traffic) installs a release
another process applied (the record in Redis, router/live/following.py), picks up a changed live folder, and
reads the diversions; requests also look at the folder at most once a second, and SIGHUP makes it look
at once.
"""
from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
import weakref
from datetime import datetime, timezone
from pathlib import Path

import redis

from router.live import diversion_rules, signing as release_auth
from router.live.diversion_rules import Diversion, diverted
from router.live.diversion_store import SeenDiversions, read_diversions
from router.live.folders import sweep_scratch
from router.live.following import follow, followed_release
from router.live.history import History, Release
from router.live.published import Refused, report_serving
from router import metrics
from router.inspect.validation import load_checked
from router.definition.flowfile import FILES, FlowError, Problem
from router.definition.model import Flows

log = logging.getLogger("router.flows")
HISTORY_TRIES = 5  # releases tried, newest first, when the live folder is broken at start


def followed_source(release: Release) -> str:
    """/healthz's flows_source for a release another instance applied, served from the history."""
    return f"release {release.number}, followed from the history"


class FlowsUnavailable(RuntimeError):
    """No valid flows anywhere: the caller gets the safety answer."""


def folder_signature(folder: Path) -> tuple:
    sig: list[tuple[str, int | None, int | None, int | None]] = []
    for name in sorted(FILES):
        try:
            st = os.stat(folder / name)
            sig.append((name, st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            sig.append((name, None, None, None))
    return tuple(sig)


def load(folder: Path) -> Flows:
    """load_checked(), with any unexpected failure turned into a refusal: a bug in loading must never
    stop a worker from starting or take the flows it serves away."""
    try:
        return load_checked(folder)
    except FlowError:
        raise
    except Exception as exc:  # noqa: BLE001
        log.exception("loading the flows failed")
        raise FlowError([Problem(str(folder), 1, "", f"could not be loaded ({type(exc).__name__}); the log "
                                 "has the details")]) from None


def log_refusal(exc: FlowError, what: str) -> None:
    """One readable line per problem, then what is served instead."""
    for problem in exc.problems:
        log.error("flow change refused: %s", problem)
    log.error("%s (%d problem%s above)", what, len(exc.problems), "s" * (len(exc.problems) != 1))


class FlowStore:
    def __init__(self, folder: Path, flows: Flows | None = None, check_interval: float = 1.0, *,
                 history: History | None = None, client: redis.Redis | None = None,
                 keys: release_auth.Keyring | None = None):
        self.folder = Path(folder)
        self.keys = release_auth.keyring(keys)   # default: this process's, from its settings
        self.untrusted: str | None = None   # what Redis held that was not believed (not signed), if anything
        self.check_interval = check_interval
        self.history = history
        self.client = client
        self._lock = threading.Lock()
        self.last_error: FlowError | None = None
        self.source = "given"
        self.applied: Release | None = None
        self.redis_ok: bool | None = None
        self._diversions: dict[str, Diversion] = {}
        self._ignored: dict[str, str] = {}  # diversions refused here: service id -> why
        self._seen = SeenDiversions(history)  # entries written back after they ended are refused
        self._watcher: tuple[int, threading.Thread] | None = None
        self._watch_interval = 0.0
        self._tried: list[int] = []
        self._signature = folder_signature(self.folder)
        self._history_mark: tuple | None = None   # the newest release in the history, as last looked at
        self._seen_mark: tuple | None = None      # ... when what is served was last chosen
        self._followed: Release | None = None     # the followed release served instead of the live folder
        self._base: Flows | None = flows
        if history is not None:  # what versions before 2026-12 left in the temporary folder when killed
            sweep_scratch(Path(tempfile.gettempdir()), "helpline-release-*")
        if flows is None:
            try:
                self._follow_applied()
            except Exception:  # noqa: BLE001 - following is a nicety at start; serving is not
                log.exception("could not follow the applied release at start")
            self._signature = folder_signature(self.folder)
            self._note_history()
            self._seen_mark = self._history_mark
            self._base = self._first_good()
        self.set_diversions(self._diversions)  # those read at start apply from the first request
        self._next_check = time.monotonic() + check_interval

    # -------------------------------------------------------------- what requests get
    def current(self) -> Flows:
        if time.monotonic() >= self._next_check:
            if self._watcher is not None and self._watcher[0] != os.getpid():
                self.watch(self._watch_interval)  # forked after create_app (gunicorn --preload)
            self.reload_if_changed()
        flows = self._flows
        if flows is None:
            raise FlowsUnavailable("no valid flows: answering with the safety message")
        if self._diversions and any(not d.active() for d in self._diversions.values()):
            self.set_diversions({sid: d for sid, d in self._diversions.items() if d.active()})
            flows = self._flows or flows  # the same base: never None here
        return flows

    @property
    def base(self) -> Flows | None:
        """The flows as loaded, without diversions."""
        return self._base

    @property
    def diversions(self) -> dict[str, Diversion]:
        return {sid: d for sid, d in self._diversions.items() if d.active()}

    # -------------------------------------------------------------- loading
    def _first_good(self) -> Flows | None:
        history = self.history
        followed = followed_release(history, self.folder) if history is not None else None
        if history is not None and followed is not None:
            try:
                flows = load(history.folder(followed.number))
                self._followed, self.source = followed, followed_source(followed)
                return flows
            except FlowError:  # validated before it was installed: only a damaged disk gets here
                log.error("release %s in the history is refused: trying the live folder", followed.number)
        try:
            flows = load(self.folder)
            self.source = "live folder"
            return flows
        except FlowError as exc:
            self.last_error = exc
        for release in reversed(history.releases() if history is not None else []):
            if len(self._tried) >= HISTORY_TRIES or history is None:
                break
            self._tried.append(release.number)
            try:
                flows = load(history.folder(release.number))
            except FlowError:
                continue
            self.source = f"release {release.number} from the history"
            log_refusal(self.last_error, f"the live folder {self.folder} is refused at start: serving release "
                        f"{release.number} (flows_version {flows.version}) from {history.home}")
            return flows
        self.source = "the safety answer"
        log_refusal(self.last_error, f"the live folder {self.folder} is refused at start and no good release "
                    "was found: every call and text gets the safety answer until the flows are fixed")
        return None

    def reload_if_changed(self, force: bool = False) -> bool:
        """Load the live folder, or a release followed since it changed (followed_release), if either
        changed; True if new flows are now in use."""
        if not self._lock.acquire(blocking=False):
            return False  # another thread is already looking
        try:
            self._next_check = time.monotonic() + self.check_interval
            signature, mark = folder_signature(self.folder), self._history_mark
            if signature == self._signature and mark == self._seen_mark and not force:
                return False
            history = self.history
            followed = followed_release(history, self.folder) if history is not None else None
            folder = history.folder(followed.number) if history is not None and followed is not None else self.folder
            source = followed_source(followed) if followed is not None else "live folder"
            try:
                flows = load(folder)
            except FlowError as exc:
                if folder_signature(self.folder) != signature:
                    return False  # replaced while being read (an apply): look again, refuse nothing
                self._signature, self._seen_mark = signature, mark
                self.last_error = exc
                metrics.ERRORS.labels("flows_refused").inc()
                serving = self._base.version if self._base else "none (the safety answer)"
                log_refusal(exc, f"still serving flows_version {serving} (pid {os.getpid()})")
                return False
            if folder_signature(self.folder) != signature:
                return False  # replaced while being read: look again next time, never serve a mix
            self._signature, self._seen_mark = signature, mark
            self.last_error = None
            self._followed = followed
            if self._base is not None and flows.version == self._base.version:
                self.source = source
                return False
            old = self._base.version if self._base else "none"
            self._base, self.source = flows, source
            self.set_diversions(self._diversions)
            log.info("flows reloaded: version %s -> %s (pid %d)", old, flows.version, os.getpid())
            return True
        finally:
            self._lock.release()

    # -------------------------------------------------------------- following the applied release
    def _follow_applied(self) -> None:
        """Install the release Redis names if this instance has not, and read the diversions."""
        if self.client is None or self.history is None:
            self.applied = self.history.latest() if self.history else None
            return
        try:
            untrusted = []
            try:
                self.applied = follow(self.client, self.history, self.keys) or \
                    self.history.latest()
            except Refused as exc:  # not signed with our key: nothing of it is written or served
                untrusted.append(str(exc))
                self.applied = self.history.latest()
            except (OSError, ValueError) as exc:  # the live folder not writable, a damaged release in Redis:
                log.warning("cannot install the applied release (%s): serving what is live here",  # diversions
                            type(exc).__name__)                                                # still count
                self.applied = self.history.latest()
            diversions, refused = read_diversions(self.client, self.keys)
            diversions, replayed = self._seen.screen(diversions, complete=not refused)
            if refused:
                untrusted.append(f"{refused} diversion(s) in Redis are not signed with this instance's "
                                 "FLOWS_SIGNING_KEY (or last too long)")
            if replayed:
                untrusted.append(f"{replayed} diversion(s) in Redis were written back after they ended or were "
                                 "replaced")
            self._note_untrusted("; ".join(untrusted) or None)
            if self.redis_ok is False:
                log.info("Redis is back: following the applied release and diversions again")
            self.redis_ok = True
        except (redis.RedisError, OSError) as exc:
            if self.redis_ok is not False:
                log.warning("cannot follow the applied release (%s: Redis, or writing the live folder): "
                            "serving what is live here", type(exc).__name__)
            self.redis_ok = False
            self.applied = self.history.latest()
            return
        self._report()
        if set(diversions.items()) != set(self._diversions.items()):
            for diversion in diversions.values():
                if diversion not in self._diversions.values():
                    log.info("diversion in force: %s (pid %d)", diversion.line(), os.getpid())
            for sid in set(self._diversions) - set(diversions):
                log.info("diversion ended: %s (pid %d)", sid, os.getpid())
            self.set_diversions(diversions)

    def _report(self) -> None:
        """Tell `router status` what this worker serves (a small record with a one-minute TTL)."""
        if self.client is None:
            return
        try:
            body = self.status()
            report_serving(self.client, f"{socket.gethostname()}:{os.getpid()}", {
                "flows_version": body.get("flows_version"), "source": body.get("flows_source"),
                "applied_release": body.get("applied_release"), "status": body["status"], "why": body.get("why")})
        except (redis.RedisError, OSError):
            pass  # reporting is for operators; serving goes on

    def _note_untrusted(self, what: str | None) -> None:
        """Log once when Redis starts (and stops) holding what this instance does not believe."""
        if what != self.untrusted:
            if what:
                metrics.ERRORS.labels("unsigned_in_redis").inc()
                log.error("ignored from Redis: %s. Releases and diversions are made by `router apply` and "
                          "`router divert` with the key; anything else in those keys was written by someone "
                          "else with access to Redis", what)
            else:
                log.info("Redis holds nothing unsigned any more")
        self.untrusted = what

    def set_diversions(self, diversions: dict[str, Diversion]) -> None:
        """Serve the diversions in force, except those the rules refuse whatever the time (written straight
        into Redis, or made for flows that have changed since): those are ignored, logged and shown."""
        self._diversions = dict(diversions)
        base = self._base
        unsafe = diversion_rules.unsafe_diversions(base, self._diversions)
        for sid in set(unsafe) - set(self._ignored):
            log.error("%s (pid %d)", unsafe[sid], os.getpid())
        self._ignored = unsafe
        usable = {sid: d for sid, d in self._diversions.items() if sid not in unsafe}
        self._flows = diverted(base, usable) if base is not None else None

    def tick(self) -> None:
        """One look: the applied release, the diversions, the live folder."""
        self._follow_applied()
        self._note_history()
        self.reload_if_changed()

    def _note_history(self) -> None:
        """Note the newest release in the history (another worker here may have installed it): the next
        look serves it if it is newer than the live folder. Looked at by the watcher, not by requests."""
        try:
            latest = self.history.latest() if self.history is not None else None
        except OSError:
            return
        self._history_mark = (latest.number, latest.version) if latest is not None else None

    def watch(self, interval: float) -> None:
        """Look every `interval` seconds in a daemon thread of this process (again after a fork)."""
        if interval <= 0 or (self._watcher and self._watcher[0] == os.getpid() and self._watcher[1].is_alive()):
            return
        self._watch_interval = interval
        ref = weakref.ref(self)
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval):
                store = ref()
                if store is None:
                    return
                try:
                    store.tick()
                except Exception:  # noqa: BLE001 - the watcher must outlive any one bad look
                    log.exception("looking for new flows failed")
                del store

        thread = threading.Thread(target=run, name="flows-watcher", daemon=True)
        self._watcher = (os.getpid(), thread)
        thread.start()

    # -------------------------------------------------------------- what /healthz says
    def emergency_lines_down(self) -> list[str]:
        """Each 24-hour line silent callers reach that is diverted or closed now (/healthz, the metric)."""
        return diversion_rules.emergency_lines_down(self._base, self.diversions, datetime.now(timezone.utc))

    def status(self) -> dict:
        flows = self._base
        body: dict = {"flows_version": flows.version if flows else None, "flows_source": self.source}
        applied = self.applied
        if applied is not None:
            body["applied_release"] = applied.number
            body["applied_version"] = applied.version
            body["matches_applied"] = flows is not None and flows.version == applied.version
        degraded = []
        if flows is None:
            degraded.append("no valid flows: every call and text gets the safety answer")
        elif self.source != "live folder" and self.source != "given" and self._followed is None:
            degraded.append(f"the live folder is refused: serving {self.source}")
        if self.last_error is not None:
            body["flows_refused"] = len(self.last_error.problems)
            body["problems"] = [str(p) for p in self.last_error.problems[:20]]
            if flows is not None and (self.source == "live folder" or self._followed is not None):
                degraded.append("a change to the live folder was refused: the last good flows serve on")
        latest = self.history.latest() if self.history is not None else None
        if applied is not None and latest is not None and latest.number > applied.number and flows is not None \
                and flows.version == latest.version:
            degraded.append(f"serving release {latest.number}, applied here while Redis was unreachable; other "
                            f"instances serve release {applied.number}: run `router publish`")
        elif applied is not None and body.get("matches_applied") is False:
            degraded.append(f"not serving the applied release {applied.number}: `router status` says why and "
                            "what to do")
        down = self.emergency_lines_down()
        degraded += down
        emergency = diversion_rules.emergency_line_ids(flows) if flows is not None else {}
        degraded += [why for sid, why in self._ignored.items() if sid in self.diversions and sid not in emergency]
        if self.untrusted:
            body["ignored_from_redis"] = self.untrusted
            degraded.append("a release or diversion in Redis is not signed: ignored")
        if self._diversions:
            body["diversions"] = {sid: {"to": d.to, "until": d.until.isoformat()}
                                  for sid, d in self.diversions.items()}
        body["status"] = "degraded" if degraded else "ok"
        if degraded:
            body["why"] = degraded
        return body
