"""Live flows: what each web worker serves, numbered releases, and diversions of a line that is down.

Owns: the flow store a web worker serves from (flowstore: never none, swapped atomically, following the
applied release), the release history on disk (history), flow folders written whole (folders), the
applied release in Redis (published), applying and rolling back (releases), following a release in each
worker (following), diversions (diversion_rules: what they mean and which are allowed; diversion_store:
in Redis), drafts that know their base (drafts), and the signatures that make Redis transport, never
an authority (signing). Redis key names: redis_keys.

Why one package: the `router` CLI (apply, rollback, versions, divert, status) and the web process must
agree on where releases live and what they are called; neither may own the other. Others use the names
below (`from router import live`); the modules import each other directly, never this face.
"""
from router.live.diversion_rules import DEFAULT_DIVERSION, MAX_DIVERSION, Diversion, diverted
from router.live.diversion_store import divert, diversions, read_diversions, undivert
from router.live.flowstore import FlowStore, FlowsUnavailable
from router.live.folders import LIVE_FILES, read_files, replace_folder
from router.live.following import follow, followed_release, install, served_folder
from router.live.history import History, Release, now_iso
from router.live.published import (Refused, applied_release, publish, publish_if, read_applied, release_files,
                                   serving_reports)
from router.live.releases import NotInstalled, StaleBase, current_release, put_live, unpublished_warning
from router.live.signing import Keyring, Unsigned

__all__ = [
    "DEFAULT_DIVERSION", "MAX_DIVERSION", "Diversion", "diverted", "divert", "diversions", "read_diversions",
    "undivert", "FlowStore", "FlowsUnavailable", "LIVE_FILES", "read_files", "replace_folder", "follow",
    "followed_release", "install", "served_folder", "History", "Release", "now_iso", "Refused", "applied_release", "publish", "publish_if",
    "read_applied", "release_files", "serving_reports", "NotInstalled", "StaleBase", "current_release",
    "put_live", "unpublished_warning", "Keyring", "Unsigned",
]
