"""Following the applied release in each web worker: install what another instance applied.

Why apart from applying: a worker only ever installs a release someone signed and published; it checks
it whole, in memory, before writing anything, and it never overwrites good flows with a release its own
checks refuse (e.g. one made by newer code, mid-deploy). Several workers may follow at once: the
history's lock makes one of them do the writing.
"""
from __future__ import annotations

import logging
from pathlib import Path

import redis

from router.definition.flowfile import FlowError, read_flows_from
from router.inspect.checks import ERROR, lint_flows
from router.live import signing as release_auth
from router.live.folders import read_files, replace_folder, same_flows
from router.live.history import History, Release
from router.live.published import read_applied, release_files

log = logging.getLogger("router.live.following")

_REFUSED_HERE: set[tuple[int, str]] = set()  # (number, version) refused here: checked once, logged once


def install(live: Path, history: History, release: Release, files: dict[str, bytes]) -> bool:
    """Make `release` this instance's applied release: into the history (if new) and the live folder.
    True if anything changed. Several workers may call this at once: the lock makes one do it."""
    with history.locked():
        known = history.get(release.number)
        if known is not None and known.version == release.version and \
                same_flows(read_files(Path(live)), files):
            return False
        if known is None or known.version != release.version:
            history.add(files, release)
        if not same_flows(read_files(Path(live)), files):
            replace_folder(live, files)
    log.info("installed release %s (flows_version %s) applied by %s", release.number, release.version,
             release.who)
    return True


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
    problem = validate_in_memory(files, Path("release"))
    if problem:  # e.g. a release made by newer code, mid-deploy: never overwrite good flows with it
        _REFUSED_HERE.add((applied.number, applied.version))
        log.error("release %s is applied elsewhere but this instance refuses its flows (%s); staying on "
                  "what is live here", applied.number, problem)
        return applied
    install(live, history, applied, files)
    return applied


def validate_in_memory(files: dict[str, bytes], label: Path) -> str | None:
    """Why this instance refuses a release's flows (None: it accepts them), checked from memory: the
    same schema and checks as the live folder, nothing written anywhere."""
    try:
        flows, lines = read_flows_from(files, label)
    except FlowError as exc:
        return _first(exc.problems)
    errors = [p for p in lint_flows(flows, label, lines) if p.severity == ERROR]
    return _first(errors) if errors else None


def _first(problems: list) -> str:
    return f"{len(problems)} problem(s), the first: {problems[0]}" if problems else "refused"
