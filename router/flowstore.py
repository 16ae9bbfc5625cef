"""The flows in use, swapped atomically when the folder changes and the change validates.

Each request takes one Flows object (store.current()) and uses only it, so no request ever sees half a
change. A change is noticed by the files' mtimes and sizes (looked at most once a second) or at once
on SIGHUP; an invalid change is refused and logged with every reason, and the last good flows serve on.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from router import metrics
from router.flowfile import FILES, FlowError, load_flows
from router.model import Flows

log = logging.getLogger("router.flows")


def folder_signature(folder: Path) -> tuple:
    sig = []
    for name in sorted(FILES):
        try:
            st = os.stat(folder / name)
            sig.append((name, st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            sig.append((name, None, None, None))
    return tuple(sig)


class FlowStore:
    def __init__(self, folder: Path, flows: Flows | None = None, check_interval: float = 1.0):
        self.folder = Path(folder)
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._signature = folder_signature(self.folder)
        self._flows = flows if flows is not None else load_flows(self.folder)  # FlowError stops the start
        self._next_check = time.monotonic() + check_interval
        self.last_error: FlowError | None = None

    def current(self) -> Flows:
        if time.monotonic() >= self._next_check:
            self.reload_if_changed()
        return self._flows

    def reload_if_changed(self, force: bool = False) -> bool:
        """Load the folder if it changed; True if new flows are now in use."""
        if not self._lock.acquire(blocking=False):
            return False  # another thread is already looking
        try:
            self._next_check = time.monotonic() + self.check_interval
            signature = folder_signature(self.folder)
            if signature == self._signature and not force:
                return False
            self._signature = signature
            try:
                flows = load_flows(self.folder)
            except FlowError as exc:
                self.last_error = exc
                metrics.ERRORS.labels("flows_refused").inc()
                log.error("flow change refused, still serving version %s:\n%s", self._flows.version, exc)
                return False
            if flows.version == self._flows.version:
                self.last_error = None  # back to what is serving: nothing refused any more
                return False
            old, self._flows, self.last_error = self._flows.version, flows, None
            log.info("flows reloaded: version %s -> %s", old, flows.version)
            return True
        finally:
            self._lock.release()
