"""The Redis keys live flows use, in one place (until router/store/keys.py holds every key of the app).

Why here: the CLI (apply, rollback, divert, status) and every web worker must name the same keys; a
rename in one place only would silently split them. Values are signed (router/live/signing.py): Redis is
transport, never an authority.
"""
from __future__ import annotations

APPLIED_KEY = "router:flows:applied"            # the applied release's record (read every second)
RELEASE_KEY = "router:flows:release:{}"         # a release's files, by number
DIVERSIONS_KEY = "router:flows:diversions"      # service -> signed diversion
SERVING_KEY = "router:flows:serving:{}"         # what one web worker serves (router status)
