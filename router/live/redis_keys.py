"""The Redis keys live flows use, named from router/store/keys.py (where every key of the app is).

Why: the CLI (apply, rollback, divert, status) and every web worker must name the same keys; a rename
in one place only would silently split them. Values are signed (router/live/signing.py): Redis is
transport, never an authority. RELEASE_KEY and SERVING_KEY are format strings (`.format(n)`).
"""
from __future__ import annotations

from router.store import keys

APPLIED_KEY = keys.FLOWS_APPLIED                  # the applied release's record (read every second)
RELEASE_KEY = keys.flows_release("{}")            # a release's files, by number
DIVERSIONS_KEY = keys.FLOWS_DIVERSIONS            # service -> signed diversion
SERVING_KEY = keys.flows_serving("{}")            # what one web worker serves (router status)
