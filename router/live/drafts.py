"""Drafts that know where they came from: `router draft DIR` records the release it copied, and
`router apply` refuses a draft whose release is no longer the applied one.

Why: a draft is a copy of the flows. If someone else applies a change after the copy was made, putting
the draft live would quietly undo that change (issue 20: "an old draft quietly undoes others'
changes"). The record is one small file in the draft folder, `.draft-base.json`, never part of a
release (releases carry the flow files only, folders.LIVE_FILES).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from router.inspect import journeys
from router.live.history import History, Release, now_iso
from router.definition.model import Flows

BASE_FILE = ".draft-base.json"


@dataclass(frozen=True)
class DraftBase:
    release: int | None   # None: made before any release was applied
    version: str | None   # that release's flows_version
    made_at: str


def make(folder: Path, files: dict[str, bytes], base: Release | None,
         version: str | None = None) -> DraftBase:
    """Write a new draft folder holding `files`, with the record of the release they are."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} already exists and is not empty: name a new folder for the draft")
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    record = DraftBase(base.number if base else None, base.version if base else version, now_iso())
    (folder / BASE_FILE).write_text(json.dumps(record.__dict__, indent=2) + "\n")
    return record


def read_base(folder: Path) -> DraftBase | None:
    """The draft's record, or None for a folder not made by `router draft` (or with a damaged record)."""
    try:
        return DraftBase(**json.loads((Path(folder) / BASE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def base_folder(base: DraftBase, history: History) -> Path | None:
    """Where the draft's base flows are kept: its release, or any release holding the same flows."""
    if base.release and history.get(base.release) is not None:
        return history.folder(base.release)
    for release in reversed(history.releases()):
        if base.version and release.version == base.version:
            return history.folder(release.number)
    return None


def is_stale(base: DraftBase, current: Release | None) -> bool:
    return base.release != (current.number if current else None)


def undone(base: Flows | None, live: Flows | None, draft: Flows) -> list[journeys.Change]:
    """What changed for callers between the draft's base and what is live now that the draft does not
    have: what putting the draft live would undo."""
    if base is None or live is None:
        return []
    moments = journeys.moments_for(base, live, draft)
    before, now, after = (journeys.journeys(f, moments) for f in (base, live, draft))
    lost = {key for key in now if now.get(key) != before.get(key) and after.get(key) == before.get(key)}
    return journeys.changes(now, after, lost)
