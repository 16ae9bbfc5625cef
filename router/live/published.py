"""The applied release in Redis, so every instance follows one release, and what each worker serves.

`APPLIED_KEY` holds the release's details (small: each web worker reads it every second) and
`RELEASE_KEY` its files (for instances that have not installed it yet); both kept 400 days, a replaced
release's files a week more. Both are signed with FLOWS_SIGNING_KEY and believed only when the signature
holds (router/live/signing.py), read with a bound, and a release's files are a fixed set of known names.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict

import redis

from router.definition.flowfile import FILES
from router.live import signing as release_auth
from router.live.folders import LIVE_FILES
from router.live.history import Release
from router.live.redis_keys import APPLIED_KEY, RELEASE_KEY, SERVING_KEY

log = logging.getLogger("router.live.published")

RECORD_TTL_SECONDS = 400 * 24 * 3600
SUPERSEDED_TTL_SECONDS = 7 * 24 * 3600
SERVING_TTL_SECONDS = 60


class Refused(Exception):
    """What Redis holds as the applied release (or its files) is not believed: unsigned, signed with
    another key, too large, or not a release. The message says which, without its content."""


# ------------------------------------------------------------------ writing
def publish(client: redis.Redis, release: Release, files: dict[str, bytes], previous: int | None = None, *,
            keys: release_auth.Keyring | None = None) -> None:
    """Tell every instance which release is applied (and give them its files), both signed (raises
    release_auth.Unsigned without a key). The files of the release it replaces are kept a week more, for
    instances that were down; then only the history has them."""
    body, record = _signed_release(release, files, keys)
    pipe = client.pipeline(transaction=True)
    _queue_publish(pipe, release, body, record, previous)
    pipe.execute()


def publish_if(client: redis.Redis, release: Release, files: dict[str, bytes], seen: Release | None, *,
               keys: release_auth.Keyring | None = None) -> None:
    """publish(), only if the applied record is still `seen` (redis.WatchError otherwise): the
    compare-and-swap two applies meet at. Signed first: without a key (release_auth.Unsigned) nothing is
    read or written."""
    body, record = _signed_release(release, files, keys)
    with client.pipeline(transaction=True) as pipe:
        pipe.watch(APPLIED_KEY)
        now = None
        if (pipe.strlen(APPLIED_KEY) or 0) <= release_auth.MAX_RECORD_BYTES:
            try:
                now = parse_release(pipe.get(APPLIED_KEY), keys)
            except Refused:
                now = None  # as applied_release() took it: not believed, so not a release to keep
        if now != seen:
            pipe.unwatch()
            raise redis.WatchError("the applied release changed")
        pipe.multi()
        _queue_publish(pipe, release, body, record, seen.number if seen else None)
        pipe.execute()


def _signed_release(release: Release, files: dict[str, bytes],
                    keys: release_auth.Keyring | None) -> tuple[str, str]:
    keys = release_auth.keyring(keys)
    body = release_auth.signed(keys, release_auth.RELEASE_FILES, {
        "number": release.number, "files": {name: data.decode("utf-8") for name, data in files.items()}})
    return body, release_auth.signed(keys, release_auth.RELEASE_RECORD, asdict(release))


def _queue_publish(pipe, release: Release, body: str, record: str, previous: int | None) -> None:
    pipe.set(RELEASE_KEY.format(release.number), body, ex=RECORD_TTL_SECONDS)
    pipe.set(APPLIED_KEY, record, ex=RECORD_TTL_SECONDS)
    if previous is not None and previous != release.number:
        pipe.expire(RELEASE_KEY.format(previous), SUPERSEDED_TTL_SECONDS)


# ------------------------------------------------------------------ reading
def parse_release(raw: bytes | str | None, keys: release_auth.Keyring | None = None) -> Release | None:
    """The applied-release record: None if there is none; Refused unless signed with one of `keys`."""
    if not raw:
        return None
    record = release_auth.opened(release_auth.keyring(keys), release_auth.RELEASE_RECORD, raw,
                                 release_auth.MAX_RECORD_BYTES)
    if record is None:
        raise Refused("the applied-release record in Redis is not signed with this instance's "
                      "FLOWS_SIGNING_KEY")
    try:
        release = Release(**record)
    except TypeError:
        raise Refused("the applied-release record in Redis is not a release") from None
    if not isinstance(release.number, int) or not 0 < release.number < 10 ** 6 or \
            not all(isinstance(v, str) for v in (release.version, release.applied_at, release.who, release.note)):
        raise Refused("the applied-release record in Redis is not a release")
    return release


def read_applied(client: redis.Redis, keys: release_auth.Keyring | None = None) -> Release | None:
    """The applied release Redis names (None: none); raises Refused unless it is signed."""
    try:
        raw = release_auth.bounded_get(client, APPLIED_KEY, release_auth.MAX_RECORD_BYTES)
    except release_auth.TooLarge:
        raise Refused("the applied-release record in Redis is too large") from None
    return parse_release(raw, keys)


def applied_release(client: redis.Redis, keys: release_auth.Keyring | None = None) -> Release | None:
    """read_applied(), with a record that is not believed logged and taken as none."""
    try:
        return read_applied(client, keys)
    except Refused as exc:
        log.error("%s: ignored", exc)
        return None


def release_files(client: redis.Redis, number: int,
                  keys: release_auth.Keyring | None = None) -> dict[str, bytes] | None:
    """Release `number`'s files from Redis (None: not there), signed with that number, of known names
    and sizes; raises Refused otherwise. Nothing is written: the caller validates them in memory."""
    try:
        raw = release_auth.bounded_get(client, RELEASE_KEY.format(number), release_auth.MAX_RELEASE_BYTES)
    except release_auth.TooLarge:
        raise Refused(f"the files of release {number} in Redis are too large") from None
    if not raw:
        return None
    record = release_auth.opened(release_auth.keyring(keys), release_auth.RELEASE_FILES, raw,
                                 release_auth.MAX_RELEASE_BYTES)
    if record is None or record.get("number") != number or not isinstance(record.get("files"), dict) or \
            not all(isinstance(text, str) for text in record["files"].values()):
        raise Refused(f"the files of release {number} in Redis are not signed with this instance's "
                      "FLOWS_SIGNING_KEY")
    files = {str(name): text.encode("utf-8") for name, text in record["files"].items()}
    problems = release_auth.file_problems(files, LIVE_FILES, FILES)
    if problems:
        raise Refused(f"release {number} in Redis is refused: {'; '.join(problems[:3])}")
    return files


# ------------------------------------------------------------------ what each worker serves
def report_serving(client: redis.Redis, worker: str, body: dict) -> None:
    """A web worker says what it serves (router status lists every report younger than a minute)."""
    client.set(SERVING_KEY.format(worker), json.dumps(body), ex=SERVING_TTL_SECONDS)


def serving_reports(client: redis.Redis) -> dict[str, dict]:
    keys = sorted(client.scan_iter(match=SERVING_KEY.format("*"), count=500))
    found = {}
    for key, raw in zip(keys, client.mget(keys) if keys else []):
        if raw is None:  # expired since the scan
            continue
        try:
            found[(key.decode() if isinstance(key, bytes) else key).split(":", 3)[3]] = json.loads(raw)
        except (TypeError, ValueError, IndexError):
            continue
    return found
