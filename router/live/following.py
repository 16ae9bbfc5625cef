"""Following the applied release in each web worker: install what another instance applied.

Why apart from applying: a worker only ever installs a release someone signed and published; it checks
it whole, in memory, before writing anything, and it never overwrites good flows with a release its own
checks refuse (e.g. one made by newer code, mid-deploy). Several workers may follow at once: the
history's lock makes one of them do the writing. A followed release is installed into the history (a
private folder, from settings.history_dir()) and served from there: web workers never rewrite the live
folder (FLOWS_DIR, the git-tracked flows/ under `make run`), which stays the operators' source.
"""
from __future__ import annotations

import logging
from pathlib import Path

import redis

from router.definition.flowfile import FlowError, read_flows_from
from router.inspect.validation import ERROR, lint_flows
from router.live import signing as release_auth
from router.live.folders import changed_at
from router.live.history import History, Release
from router.live.published import read_applied, release_files

log = logging.getLogger("router.live.following")

_REFUSED_HERE: set[tuple[int, str]] = set()  # (number, version) refused here: checked once, logged once


def install(history: History, release: Release, files: dict[str, bytes]) -> bool:
    """Make `release` this instance's applied release: into the history, which this instance's web
    workers serve it from (followed_release). Never into the live folder: that is the operators' source
    (often a git checkout), written only by `router apply` and `rollback`. True if anything changed.
    Several workers may call this at once: the lock makes one do it."""
    with history.locked():
        known = history.get(release.number)
        if known is not None and known.version == release.version:
            return False
        history.add(files, release)
    log.info("installed release %s (flows_version %s) applied by %s", release.number, release.version,
             release.who)
    return True


def followed_release(history: History, live: Path) -> Release | None:
    """The release to serve instead of the live folder, or None to serve the live folder: the newest
    release in the history when it was installed here after the live folder last changed, i.e. one
    another instance applied. An apply or rollback here writes the history first and the live folder
    last, and an edit made in place is newer than any release, so both serve the live folder as before."""
    latest = history.latest()
    if latest is None:
        return None
    try:
        installed = (history.folder(latest.number) / "release.json").stat().st_mtime_ns
    except OSError:
        return None
    changed = changed_at(live)
    return latest if changed is None or installed > changed else None


def served_folder(live: Path, history: History) -> Path:
    """The folder this instance's web workers serve (when it validates): a followed release's, else the
    live folder. What `router apply` compares a change with, and what `router status` reports."""
    followed = followed_release(history, live)
    return history.folder(followed.number) if followed is not None else Path(live)


def follow(client: redis.Redis, history: History, keys: release_auth.Keyring | None = None) -> Release | None:
    """If Redis names a release newer than this instance's newest, install it into the history (the
    web workers then serve it from there: followed_release). Returns the applied
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
    if (applied.number, applied.version) in _REFUSED_HERE:  # before reading it: not every second
        return applied
    files = release_files(client, applied.number, keys)
    if files is None:
        log.warning("release %s is applied but its files are not in Redis; staying on what is live",
                    applied.number)
        return applied
    problem = validate_in_memory(files, Path("release"))
    if problem:  # e.g. a release made by newer code, mid-deploy: never overwrite good flows with it
        _REFUSED_HERE.add((applied.number, applied.version))
        log.error("release %s is applied elsewhere but this instance refuses its flows (%s); staying on "
                  "what is live here", applied.number, problem)
        return applied
    install(history, applied, files)
    return applied


def validate_in_memory(files: dict[str, bytes], label: Path) -> str | None:
    """Why this instance refuses a release's flows (None: it accepts them), checked from memory: the
    same schema and checks as the live folder, nothing written anywhere."""
    try:
        flows, lines = read_flows_from(files, label)
        errors = [p for p in lint_flows(flows, label, lines) if p.severity == ERROR]
    except FlowError as exc:
        return _first(exc.problems)
    except Exception as exc:  # a bug in reading or checking refuses the release; following goes on
        log.exception("checking a release failed")
        return f"its checks failed ({type(exc).__name__})"
    return _first(errors) if errors else None


def _first(problems: list) -> str:
    return f"{len(problems)} problem(s), the first: {problems[0]}" if problems else "refused"
