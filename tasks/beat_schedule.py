"""Where Celery beat keeps its schedule: a file in a folder that nobody but beat's user can write.

Beat's PersistentScheduler keeps its state with `shelve`, that is with pickle, and unpickling runs code:
whoever can create or replace that file runs code as the beat user. The old default,
/tmp/helpline-router-beat, could be planted by anyone on the host before beat started. So the default
is now a private folder of the user's own ($XDG_STATE_HOME or ~/.local/state, then helpline-router/,
made 0700), `make run` uses .data/beat/ (0700), and whatever CELERY_BEAT_SCHEDULE names is checked
before beat opens it: its folder (symlinks resolved) must belong to beat's user and be writable by
nobody else, and so must any file of the schedule that exists already. Otherwise beat refuses to start.
Which file it is comes from Settings.beat_schedule (router.settings.beat_schedule_path).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from celery.beat import PersistentScheduler


class UnsafeScheduleFile(RuntimeError):
    """The schedule file could be written by someone other than beat's user."""


def _owned_and_not_shared(path: Path) -> bool:
    info = path.stat()
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def ensure_private(schedule: Path) -> Path:
    """Make the schedule's folder if missing (0700); raise UnsafeScheduleFile unless it and any file of
    the schedule (shelve may add a suffix) belong to this user and are writable by nobody else."""
    folder = schedule.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
    folder = folder.resolve()
    if not _owned_and_not_shared(folder):
        raise UnsafeScheduleFile(
            f"beat's schedule folder {folder} can be written by others (or is not ours): set "
            f"CELERY_BEAT_SCHEDULE to a file in a private folder (mode 0700)")
    for existing in folder.glob(schedule.name + "*"):
        if not _owned_and_not_shared(existing):
            raise UnsafeScheduleFile(f"beat's schedule file {existing} is not ours alone: remove it")
    return schedule


class PrivateScheduler(PersistentScheduler):
    """Celery's PersistentScheduler, opened only after ensure_private approved its file."""

    def setup_schedule(self):
        ensure_private(Path(self.schedule_filename))
        super().setup_schedule()
