"""Flow folders written whole: the files a release carries, and a folder replaced in one step.

Why: a reader (a web worker loading flows) must see the old files or the new ones, never a mix, and a
process killed mid-write must leave nothing that is ever served. Names are never of our choosing: only
the known flow files (LIVE_FILES), inside the folder being written.
"""
from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import time
from pathlib import Path

from router.definition.flowfile import FILES

LIVE_FILES = tuple(FILES) + ("scenarios.yaml",)   # scenarios travel with the flows they check
SCRATCH_AGE_SECONDS = 120   # a folder being written is minutes old at most: older ones were left by a kill


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


def changed_at(folder: Path) -> int | None:
    """When a flow file of `folder` last changed (ns since the epoch); None when it has none. Every write
    here sets it (write_files); an edit or a git checkout does too."""
    times = []
    for name in FILES:
        try:
            times.append(os.stat(Path(folder) / name).st_mtime_ns)
        except OSError:
            continue
    return max(times, default=None)


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


def sweep_scratch(parent: Path, *patterns: str) -> None:
    """Remove what a process killed mid-write left: staged folders matching `patterns` in `parent`,
    untouched for SCRATCH_AGE_SECONDS (the caller holds the history lock, so none is being written)."""
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
