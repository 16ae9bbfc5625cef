"""Redis is not a key to the helpline (issue 21, findings 1 and 2): releases and diversions in Redis are
believed only when signed with FLOWS_SIGNING_KEY, which Redis never sees (router/live/signing.py), and a
release is a fixed set of known file names, checked and validated in memory before any file is written.

Each attack is written into Redis as the red team wrote it (the format the app itself used to publish),
by someone with Redis' password and no signing key; then the same with the key, where only the content
checks stand between it and the disk.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from router import live
from router.live import folders
from router.live import signing as release_auth
from router.cli import main
from router.live.flowstore import FlowStore
from router.live.history import Release
from router.live.redis_keys import APPLIED_KEY, DIVERSIONS_KEY, RELEASE_KEY
from tests.conftest import FLOWS
from tests.support import SIGNING_KEY
from tests.test_yaml_limits import ALIAS_BOMB

KEYS = release_auth.Keyring([SIGNING_KEY.encode()])
NATIONAL = "national_domestic_abuse_helpline"


@pytest.fixture
def instance(tmp_path, redis_url):
    """An instance's live folder and history, following Redis, and a private temporary folder."""
    live_dir = tmp_path / "live"
    shutil.copytree(FLOWS, live_dir)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    old_tempdir, tempfile.tempdir = tempfile.tempdir, str(scratch)
    client = redis.Redis.from_url(redis_url)
    store = FlowStore(live_dir, history=live.History(tmp_path / "history"), client=client, keys=KEYS)
    yield {"live": live_dir, "store": store, "redis": client, "tmp": tmp_path, "scratch": scratch}
    tempfile.tempdir = old_tempdir


def files_of(folder: Path, **changes: bytes) -> dict[str, bytes]:
    files = live.read_files(folder)
    files.update(changes)
    return files


def forge(client, number: int, files: dict[str, bytes], who: str = "Sam Jones (on call)") -> None:
    """A release written straight into Redis, unsigned, as the app published them before."""
    client.set(RELEASE_KEY.format(number), json.dumps({name: data.decode() for name, data in files.items()}))
    client.set(APPLIED_KEY, json.dumps({"number": number, "version": "f0rged", "applied_at":
                                        datetime.now(timezone.utc).isoformat(), "who": who, "note": "",
                                        "action": "apply"}))


def sign(client, number: int, files: dict[str, bytes]) -> None:
    """A release signed with the key (an operator's machine, or a stolen key), its files as given."""
    client.set(RELEASE_KEY.format(number), release_auth.signed(KEYS, release_auth.RELEASE_FILES, {
        "number": number, "files": {name: data.decode() for name, data in files.items()}}))
    client.set(APPLIED_KEY, release_auth.signed(KEYS, release_auth.RELEASE_RECORD, {
        "number": number, "version": "0123456789ab", "applied_at": datetime.now(timezone.utc).isoformat(),
        "who": "night-operator", "note": "", "action": "apply"}))


def nothing_written(instance, planted: Path) -> None:
    assert not planted.exists(), "a file was written outside the flows folder"
    assert list(instance["scratch"].iterdir()) == [], "nothing is written to check a release"
    assert instance["store"].history.releases() == []
    assert live.read_files(instance["live"]) == live.read_files(FLOWS)


def test_a_release_naming_a_file_outside_the_flows_folder_writes_nothing(instance):
    """Finding 1: a planted `.pth` (here an absolute name) was written before the release was refused."""
    planted = instance["tmp"] / "planted.pth"
    forge(instance["redis"], 7, files_of(FLOWS, **{str(planted): b"import os; os.system('id')\n"}))
    instance["store"].tick()
    nothing_written(instance, planted)
    sign(instance["redis"], 8, files_of(FLOWS, **{str(planted): b"x\n", "../evil.pth": b"x\n"}))
    instance["store"].tick()
    nothing_written(instance, planted)
    assert "not a flow file name" in instance["store"].untrusted
    with pytest.raises(ValueError):
        folders.write_files(instance["tmp"] / "x", {"../escape.pth": b""})


def test_a_forged_release_rerouting_the_24_hour_line_is_ignored_and_shown(instance):
    """Finding 2: an unsigned release changed the 24-hour line's number and credited a named operator."""
    rerouted = (FLOWS / "services.yaml").read_bytes().replace(b'"0808 2000 247"', b'"0808 1570 000"')
    forge(instance["redis"], 7, files_of(FLOWS, **{"services.yaml": rerouted}))
    instance["store"].tick()
    assert instance["store"].current().services[NATIONAL].number == "0808 2000 247"
    assert b"0808 1570 000" not in (instance["live"] / "services.yaml").read_bytes()
    assert instance["store"].history.releases() == [], "no history credits anyone"
    status = instance["store"].status()
    assert status["status"] == "degraded" and "not signed" in " ".join(status["why"])
    from router import metrics
    assert metrics.ERRORS.labels("unsigned_in_redis")._value.get() >= 1, "counted: the alert pages on it"


def test_a_signed_release_is_validated_in_memory_and_a_bad_one_writes_nothing(instance):
    planted = instance["tmp"] / "planted.pth"
    broken = (FLOWS / "services.yaml").read_bytes().replace(b'"0808 2000 247"', b"not a number")
    sign(instance["redis"], 7, files_of(FLOWS, **{"services.yaml": broken}))
    instance["store"].tick()
    nothing_written(instance, planted)
    started = time.perf_counter()
    sign(instance["redis"], 8, files_of(FLOWS, **{"menu.yaml": ALIAS_BOMB.encode()}))
    instance["store"].tick()
    assert time.perf_counter() - started < 1, "an alias bomb in a release is refused at once"
    nothing_written(instance, planted)
    sign(instance["redis"], 9, files_of(FLOWS, **{"phrases.yaml": b"#" * (release_auth.MAX_FILE_BYTES + 1)}))
    with pytest.raises(live.Refused, match="larger than"):
        live.release_files(instance["redis"], 9, KEYS)


def test_a_genuine_release_is_followed_and_the_key_can_be_rotated(instance, tmp_path):
    from router.inspect.validation import load_checked

    changed = (FLOWS / "phrases.yaml").read_bytes().replace(b"Please hold.", b"Please stay on the line.")
    files = files_of(FLOWS, **{"phrases.yaml": changed})
    draft = tmp_path / "draft"
    folders.write_files(draft, files)
    flows = load_checked(draft)
    release = Release(3, flows.version, live.now_iso(), "night-operator")
    old_key = release_auth.Keyring([b"the-key-before-the-rotation-0123456789"])
    live.publish(instance["redis"], release, files, keys=old_key)
    instance["store"].tick()
    assert instance["store"].untrusted and instance["store"].current().version != flows.version
    instance["store"].keys = release_auth.Keyring([SIGNING_KEY.encode(), b"the-key-before-the-rotation-0123456789"])
    instance["store"].tick()
    assert instance["store"].current().version == flows.version and instance["store"].untrusted is None
    assert instance["store"].status()["status"] == "ok"


def test_diversions_are_believed_only_when_signed_and_never_for_longer_than_a_week(instance):
    client, store = instance["redis"], instance["store"]
    year = (datetime.now(timezone.utc) + timedelta(days=365)).isoformat()
    client.hset(DIVERSIONS_KEY, NATIONAL, json.dumps({"to": "galop", "until": year, "who": "Sam Jones"}))
    store.tick()
    assert store.current().services[NATIONAL].id == NATIONAL and store.diversions == {}
    assert "diversion" in store.untrusted and store.status()["status"] == "degraded"
    client.delete(DIVERSIONS_KEY)
    # signed, but made to last a year (an old client, or someone with the key): refused when read
    client.hset(DIVERSIONS_KEY, NATIONAL, release_auth.signed(KEYS, release_auth.DIVERSION, {
        "service": NATIONAL, "to": "galop", "until": year, "who": "x", "at": datetime.now(timezone.utc).isoformat()}))
    store.tick()
    assert store.diversions == {}
    client.delete(DIVERSIONS_KEY)
    client.hset(DIVERSIONS_KEY, mapping={f"s{n}": "x" * 10 for n in range(release_auth.MAX_DIVERSIONS + 1)})
    store.tick()
    assert store.diversions == {} and store.untrusted
    client.delete(DIVERSIONS_KEY)
    live.divert(client, "galop", NATIONAL, datetime.now(timezone.utc) + timedelta(hours=1), keys=KEYS)
    store.tick()
    assert store.current().services["galop"].id == NATIONAL and store.untrusted is None


def test_without_a_signing_key_divert_is_refused_and_apply_stays_local(tmp_path, redis_url, monkeypatch):
    monkeypatch.delenv("FLOWS_SIGNING_KEY")
    live_dir, draft = tmp_path / "live", tmp_path / "draft"
    shutil.copytree(FLOWS, live_dir)
    shutil.copytree(FLOWS, draft)
    env = {"FLOWS_DIR": str(live_dir), "FLOWS_HISTORY_DIR": str(tmp_path / "history"), "REDIS_URL": redis_url,
           "ROUTER_OPERATOR": "night-operator"}
    result = CliRunner().invoke(main, ["divert", "galop", "--to", NATIONAL], env=env)
    assert result.exit_code == 1 and "FLOWS_SIGNING_KEY" in result.output
    (draft / "phrases.yaml").write_bytes((FLOWS / "phrases.yaml").read_bytes().replace(
        b"to {name}. Please hold.", b"to {name}. Please stay on the line."))
    result = CliRunner().invoke(main, ["apply", str(draft), "--yes"], env=env)
    assert result.exit_code == 3 and "NOT DONE: FLOWS_SIGNING_KEY is not set here" in result.output, \
        "live here only: not a success (exit 3), and it says so"
    assert redis.Redis.from_url(redis_url).get(APPLIED_KEY) is None


def test_scratch_left_by_a_killed_process_is_cleaned_at_the_next_write(tmp_path):
    """Issue 21: a worker killed mid-check left scratch folders behind (the check now writes none, see
    above); a kill mid-write leaves a staged folder beside the live one or in the history, which the next
    write removes once it is clearly abandoned."""
    import os

    live_dir, history = tmp_path / "live", live.History(tmp_path / "history")
    shutil.copytree(FLOWS, live_dir)
    history.releases_dir.mkdir(parents=True)
    old = time.time() - folders.SCRATCH_AGE_SECONDS - 60
    left = [history.releases_dir / ".incoming-4242-dead", tmp_path / ".live.new-dead", tmp_path / ".live.old-dead"]
    for folder in left:
        (folder).mkdir()
        (folder / "menu.yaml").write_text("caller's words would never be here, but flows are")
        os.utime(folder, (old, old))
    fresh = tmp_path / ".live.new-busy"
    fresh.mkdir()  # being written by another process right now: left alone
    older_version = Path(tempfile.mkdtemp(prefix="helpline-release-"))  # an earlier version's check, killed
    os.utime(older_version, (old, old))
    FlowStore(live_dir, history=history, client=None)
    assert not older_version.exists()
    files = live.read_files(FLOWS)
    with history.locked():
        history.add(files, Release(1, "v", live.now_iso(), "tester"))
        live.replace_folder(live_dir, files)
    assert not any(folder.exists() for folder in left) and fresh.exists()


def test_a_diversion_unreadable_for_a_while_is_not_taken_for_an_ended_one(instance):
    """An entry this worker cannot verify for a moment (here: signed with a key it does not hold yet, as
    during a key rotation) is missing from the read, not ended: once readable again it is believed."""
    client, store = instance["redis"], instance["store"]
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    live.divert(client, "galop", NATIONAL, until, keys=KEYS)
    store.tick()
    assert store.diversions["galop"].to == NATIONAL
    signed = client.hget(DIVERSIONS_KEY, "galop")
    live.divert(client, "galop", NATIONAL, until, keys=release_auth.Keyring([b"the-key-after-the-rotation-0123456789"]))
    store.tick()
    assert store.diversions == {} and "not signed" in store.untrusted
    client.hset(DIVERSIONS_KEY, "galop", signed)                     # readable again (the key arrived)
    store.tick()
    assert store.diversions["galop"].to == NATIONAL and store.untrusted is None


def test_a_diversion_written_back_after_it_ended_or_was_replaced_is_refused(instance):
    """Issue 22: a signed entry copied from Redis and written back after `router undivert` (or after a
    newer diversion of the same line) is not believed by a worker that saw it end; a new diversion is."""
    client, store = instance["redis"], instance["store"]
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    live.divert(client, "galop", NATIONAL, until, keys=KEYS)
    store.tick()
    assert store.diversions["galop"].to == NATIONAL
    copied = client.hget(DIVERSIONS_KEY, "galop")
    live.undivert(client, "galop", keys=KEYS)
    store.tick()
    assert store.diversions == {} and store.untrusted is None
    client.hset(DIVERSIONS_KEY, "galop", copied)                     # written back, signature and all
    client.expire(DIVERSIONS_KEY, 3600)
    store.tick()
    assert store.diversions == {} and store.current().services["galop"].id == "galop"
    assert "written back after they ended" in store.untrusted and store.status()["status"] == "degraded"
    restarted = FlowStore(instance["live"], history=store.history, client=client, keys=KEYS)  # a worker started later
    assert restarted.diversions == {} and "written back after they ended" in restarted.untrusted
    seen = (store.history.home / "diversions-seen.json").read_text()
    assert "galop" in seen and NATIONAL not in seen, "service ids and times only"
    live.divert(client, "galop", NATIONAL, until, keys=KEYS)         # a new one is believed
    store.tick()
    assert store.diversions["galop"].to == NATIONAL and store.untrusted is None
    first = client.hget(DIVERSIONS_KEY, "galop")
    live.divert(client, "galop", "respect_phoneline", until, keys=KEYS)  # replaced by a newer one
    store.tick()
    client.hset(DIVERSIONS_KEY, "galop", first)
    store.tick()
    assert store.diversions == {} and "written back" in store.untrusted
