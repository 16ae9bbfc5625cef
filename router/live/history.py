"""The numbered releases of one instance, on disk, outside the folder being edited.

settings.history_dir() holds releases/0001/, releases/0002/, ... each a whole copy of the flow files
plus release.json (number, flows_version, time, who, note, action). Append-only: a rollback is a new
release holding the old files. The newest release is the applied one, and the last good flows a web
worker falls back to when the live folder is broken at start. Why a history of its own: `router
rollback` must work when Redis and the live folder are both gone, and nobody edits it by hand.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from router.definition.hours import LONDON
from router.live.folders import sweep_scratch, write_files

log = logging.getLogger("router.live.history")


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


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
