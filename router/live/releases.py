"""Putting flows live: a new numbered release, the atomic switch, rollback (a release of old files).

Why one place: `router apply` and `router rollback` must record, publish and switch in one order that
two operators at once cannot both win, and that leaves a true record when Redis or the disk fails
halfway. The web workers' side (following what was applied) is router/live/following.py.
"""
from __future__ import annotations

from pathlib import Path
from types import EllipsisType

import redis

from router.definition.model import Flows
from router.live import signing as release_auth
from router.live.folders import read_files, replace_folder
from router.live.history import History, Release, now_iso
from router.live.published import applied_release, publish_if


class StaleBase(Exception):
    """Another release was applied after the one this change was made from (or checked against): putting
    this one live would undo it. `current` is the release applied now."""

    def __init__(self, current: Release | None):
        super().__init__(f"release {current.number if current else 'none'} is applied now")
        self.current = current


class NotInstalled(Exception):
    """The release is recorded (in Redis, when reachable) but this machine's history or live folder could
    not be written: its web workers install it themselves once they can (router/live/following.py)."""

    def __init__(self, release: Release, cause: OSError):
        super().__init__(f"{type(cause).__name__}: {cause.strerror or cause}")
        self.release = release


def current_release(client: redis.Redis | None, history: History) -> Release | None:
    """The newest release anyone applied: Redis's record or this instance's history, whichever is newer.
    Raises redis errors (the caller decides whether working without Redis is acceptable)."""
    latest = history.latest()
    applied = applied_release(client) if client is not None else None
    if applied is not None and (latest is None or applied.number > latest.number):
        return applied
    return latest


def unpublished_warning(why: str) -> str:
    return (f"Redis could not be reached ({why}): this instance serves the change, but other "
            "instances do not know of it. Once Redis is back, run `router publish` (router status shows this)")


def put_live(files: dict[str, bytes], flows: Flows, *, live: Path, history: History,
             client: redis.Redis | None, who: str, note: str, action: str = "apply",
             live_version: str | None = None, expected: int | None | EllipsisType = ...) -> tuple[Release, str | None]:
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
