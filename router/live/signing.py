"""Releases and diversions travel through Redis, but are believed only when signed with a key Redis never
sees, and a release is checked whole, in memory, before any file of it is written.

Why: every web and worker host can write to Redis. A red-team review (issue 21) published a release
whose file names were not checked (a `.pth` file written into the virtualenv ran code as the app's
user), a forged release that changed the 24-hour line's number and credited a named operator, and
diversions without an end. Redis is storage and transport here, never an authority:

- The key is FLOWS_SIGNING_KEY, held by the operators who run `router apply / rollback / divert` and by
  the web tier; never by Redis, and not needed by the workers. Several keys, comma-separated, for a
  rotation: the first signs, every one verifies (docs/deployment.md says how to rotate).
- What is signed: HMAC-SHA256 over a canonical JSON of the record, with its purpose (release record,
  release files, diversion) so one cannot stand in for another. A release's files are signed with its
  number; a diversion with its service, target, end and when it was made.
- What is read is bounded before it is parsed (bounded_get, bounded_hgetall: one Lua call each), so a
  huge value written into Redis is refused without being fetched.
- A release is a fixed set of known file names (router/live/folders.py LIVE_FILES), each at most MAX_FILE_BYTES,
  validated in memory (router/live/following.py: the schema and the checks) before anything is written.

Without a key, nothing from Redis is followed (logged at start, shown in /healthz's details), `router
apply` puts flows live on this machine only, and `router divert` is refused.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any, Iterable

import redis

from router.settings import load_settings

log = logging.getLogger("router.live.signing")

MAX_FILE_BYTES = 256 * 1024            # as router.definition.flowfile.MAX_YAML_BYTES
MAX_RELEASE_BYTES = 2 * 1024 * 1024    # the files of one release, as JSON
MAX_RECORD_BYTES = 4096                # the applied-release record
MAX_DIVERSIONS = 64                    # entries in the diversions hash
MAX_DIVERSION_BYTES = 1024             # one entry
RELEASE_RECORD, RELEASE_FILES, DIVERSION = "release-record", "release-files", "diversion"


class Unsigned(Exception):
    """No FLOWS_SIGNING_KEY: nothing can be signed (or believed) on this machine."""


class Keyring:
    """The flows signing keys, newest first: the first signs, each verifies."""

    def __init__(self, keys: Iterable[bytes] = ()):
        self._keys = tuple(k for k in keys if k)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def sign(self, purpose: str, record: dict) -> str:
        if not self._keys:
            raise Unsigned("FLOWS_SIGNING_KEY is not set: releases and diversions cannot be signed here")
        return _mac(self._keys[0], purpose, record)

    def verify(self, purpose: str, record: dict, signature: Any) -> bool:
        if not isinstance(signature, str):
            return False
        return any(hmac.compare_digest(_mac(key, purpose, record), signature) for key in self._keys)


def keyring(keys: Keyring | None) -> Keyring:
    """`keys`, or this process's own (from its settings) when none is given: the CLI's case."""
    if keys is not None:
        return keys
    return Keyring(load_settings().flows_signing_keys)


def _mac(key: bytes, purpose: str, record: dict) -> str:
    body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, f"helpline-router/{purpose}/v1\0{body}".encode(), hashlib.sha256).hexdigest()


def signed(keys: Keyring, purpose: str, record: dict) -> str:
    """The record as JSON with its signature in `sig` (raises Unsigned without a key)."""
    return json.dumps(dict(record, sig=keys.sign(purpose, record)))


def opened(keys: Keyring, purpose: str, raw: bytes | str | None, max_bytes: int) -> dict | None:
    """The record of a signed JSON value, without `sig`; None when it is missing, too large, not JSON,
    or not signed with one of `keys`."""
    if raw is None or len(raw) > max_bytes:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    signature = record.pop("sig", None)
    return record if keys.verify(purpose, record, signature) else None


# ------------------------------------------------------------------ reading Redis with a bound
_GET = "if redis.call('STRLEN', KEYS[1]) > tonumber(ARGV[1]) then return -1 end return redis.call('GET', KEYS[1])"
_HGETALL = """
local n = redis.call('HLEN', KEYS[1])
if n > tonumber(ARGV[1]) then return -1 end
local flat = redis.call('HGETALL', KEYS[1])
for i = 2, #flat, 2 do
  if string.len(flat[i]) > tonumber(ARGV[2]) then return -2 end
end
return flat
"""


class TooLarge(Exception):
    """A value in Redis is larger than anything the app writes: refused without being parsed."""


def bounded_get(client: redis.Redis, key: str, max_bytes: int) -> bytes | str | None:
    value = client.eval(_GET, 1, key, max_bytes)
    if value == -1:
        raise TooLarge(key)
    return value


def bounded_hgetall(client: redis.Redis, key: str, max_fields: int, max_bytes: int) -> dict:
    flat = client.eval(_HGETALL, 1, key, max_fields, max_bytes)
    if flat in (-1, -2):
        raise TooLarge(key)
    return dict(zip(flat[::2], flat[1::2]))


# ------------------------------------------------------------------ a release's files
def file_problems(files: dict[str, bytes], allowed: Iterable[str], required: Iterable[str]) -> list[str]:
    """Why these cannot be a release's files (empty: they can): only known names, each a plain name in
    the flows folder, the required ones present, each within MAX_FILE_BYTES."""
    allowed = set(allowed)
    problems = []
    for name, data in files.items():
        if name not in allowed or Path(name).name != name:
            problems.append(f"{name[:80]!r} is not a flow file name ({', '.join(sorted(allowed))})")
        elif not isinstance(data, bytes) or len(data) > MAX_FILE_BYTES:
            problems.append(f"{name} is larger than {MAX_FILE_BYTES // 1024} kB")
    problems += [f"{name} is missing" for name in required if name not in files]
    return problems
