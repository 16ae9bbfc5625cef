"""What is left on disk: Redis' files after a follow-up, and beat's schedule file.

- A follow-up is asked for, sent and deleted (real worker, the Twilio stand-in) on a persistent Redis
  like make run's: no file Redis wrote (append-only file, RDB snapshot) holds the number in any form
  or the text, neither before the regular AOF rewrite (the fields were sealed) nor after it (then not
  even the sealed follow-up is left); every file is 0600 in a 0700 folder.
- Beat's schedule (a pickle) is kept in a private folder by default and refused in a folder others
  can write, such as /tmp.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from router.dev.embedded_redis import rewrite_aof
from router.settings import REPO_ROOT, beat_schedule_path
from tasks.beat_schedule import UnsafeScheduleFile, ensure_private
from tests.processes import CeleryBeat, wait_until
from tests.support import MOBILE
from tests.test_faults_under_load import build_stack, persistent_redis  # noqa: F401 (fixture)


def number_forms(number: str) -> list[bytes]:
    national = "0" + number[3:]                       # +447400123456 -> 07400123456
    forms = [number, number[1:], national, f"{national[:5]} {national[5:]}", quote(number, safe="")]
    return [form.encode() for form in forms]


def files_of(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def readable_leftovers(folder: Path, secrets: list[bytes]) -> list[str]:
    found = []
    for path in files_of(folder):
        data = path.read_bytes()
        found += [f"{path.name}: {secret!r}" for secret in secrets if secret in data]
    return found


def test_no_file_redis_writes_keeps_the_number_or_the_text_once_the_follow_up_is_done(persistent_redis):
    stack = build_stack(persistent_redis.url)
    try:
        stack.worker.start()
        stack.followup_now(MOBILE)
        (message,) = wait_until(lambda: stack.outbound(MOBILE), 30, message="the follow-up text")
        wait_until(lambda: message["sid"] in stack.standin.deleted_sids, 30, message="its deletion")
        wait_until(lambda: stack.pending() == 0, 10, message="the follow-up to be finished")
        client = redis.Redis.from_url(persistent_redis.url)
        client.save()                                        # an RDB snapshot as well as the AOF
        wait_until(lambda: client.info("persistence").get("aof_buffer_length", 0) == 0, 5, message="AOF written")
        secrets = number_forms(MOBILE) + [message["body"].encode(), message["body"][:24].encode()]
        folder = persistent_redis.data_dir
        assert any(p.name.endswith(".aof") for p in files_of(folder)) and (folder / "dump.rdb").exists()
        assert readable_leftovers(folder, secrets) == [], "sealed: never written readable"
        assert b"hr:fu:" in b"".join(p.read_bytes() for p in files_of(folder) if p.name.endswith(".aof"))

        assert rewrite_aof(client), "the regular rewrite (make run calls it every few minutes)"
        aof = b"".join(p.read_bytes() for p in files_of(folder) if p.name.endswith(".aof"))
        assert b"hr:fu:" not in aof, "after the rewrite not even the sealed follow-up is left"
        assert readable_leftovers(folder, secrets) == []
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        for path in files_of(folder):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        stack.worker.stop()
        stack.web.stop()
        stack.standin.stop()


def test_beats_schedule_defaults_to_a_private_folder_of_the_user(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    path = beat_schedule_path({"HOME": str(home)})
    assert path == home / ".local" / "state" / "helpline-router" / "celerybeat-schedule"
    assert beat_schedule_path({"HOME": str(home), "XDG_STATE_HOME": str(tmp_path / "state")}).parent \
        == tmp_path / "state" / "helpline-router"
    assert beat_schedule_path({"CELERY_BEAT_SCHEDULE": "/srv/beat/s"}) == Path("/srv/beat/s")
    ensure_private(path)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_schedule_others_could_plant_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)                                 # like /tmp
    with pytest.raises(UnsafeScheduleFile):
        ensure_private(shared / "celerybeat-schedule")
    with pytest.raises(UnsafeScheduleFile):
        ensure_private(Path("/tmp/helpline-router-beat"))   # the old default
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    planted = private / "celerybeat-schedule.db"
    planted.write_bytes(b"not ours alone")
    os.chmod(planted, 0o666)
    with pytest.raises(UnsafeScheduleFile):
        ensure_private(private / "celerybeat-schedule")


def test_beat_as_in_the_procfile_keeps_its_schedule_private_and_will_not_start_on_a_shared_one(tmp_path, redis_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.update(HOME=str(tmp_path / "home"), REDIS_URL=redis_url, PYTHONPATH=str(REPO_ROOT))
    beat = CeleryBeat(env).start()                           # no --schedule: the Procfile's line
    try:
        folder = tmp_path / "home" / ".local" / "state" / "helpline-router"
        wait_until(lambda: list(folder.glob("celerybeat-schedule*")), 15, message="beat's schedule file")
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    finally:
        beat.stop()
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    refused = subprocess.run([sys.executable, "-m", "celery", "-A", "tasks", "beat", "--schedule",
                              str(shared / "s")], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode != 0 and "UnsafeScheduleFile" in refused.stdout + refused.stderr
    assert not list(shared.iterdir()), "nothing was opened there"
