"""A flow file cannot explode (issue 21, finding 4): a 400-byte alias bomb in a flows file stopped
signed webhooks for ~95 s and `router validate` took over 20 s. Anchors and aliases, huge files and deep
nesting are refused in milliseconds, with file and line, by the loader every path shares: `router
validate`, the web process's reload, and a release (tests/test_release_signing.py)."""
from __future__ import annotations

import subprocess
import sys
import time

from router.web.app import create_app
from router.definition.flowfile import MAX_YAML_BYTES, MAX_YAML_DEPTH, parse_yaml
from router.settings import REPO_ROOT
from tests.conftest import copy_flows, make_settings
from tests.support import MOBILE, parse, post_signed

# 9 levels of 9 aliases: ~387 million strings once expanded.
ALIAS_BOMB = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))


def test_the_alias_bomb_is_small_and_refused_in_milliseconds():
    assert len(ALIAS_BOMB) < 450
    started = time.perf_counter()
    data, _, problems = parse_yaml(ALIAS_BOMB, "config.yaml")
    assert time.perf_counter() - started < 0.1
    assert data is None and "anchors and aliases" in problems[0].reason and problems[0].line == 1


def test_a_lone_alias_too_deep_nesting_and_a_huge_file_are_refused():
    _, _, problems = parse_yaml("a: x\nb: *a\n", "menu.yaml")
    assert problems[0].line == 2 and "aliases" in problems[0].reason
    deep = "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1)
    started = time.perf_counter()
    _, _, problems = parse_yaml(deep, "menu.yaml")
    assert "nested more than" in problems[0].reason and time.perf_counter() - started < 0.1
    _, _, problems = parse_yaml("a: " + "x" * MAX_YAML_BYTES + "\n", "phrases.yaml")
    assert "larger than" in problems[0].reason


def test_router_validate_refuses_the_bomb_at_once(tmp_path):
    flows = copy_flows(tmp_path)
    (flows / "config.yaml").write_text(ALIAS_BOMB)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "router.cli", "validate", str(flows)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert time.perf_counter() - started < 10, "CLI start-up included; it was over 20 s"
    assert result.returncode != 0 and "config.yaml:1: error: anchors and aliases" in result.stdout + result.stderr


def test_the_web_process_refuses_the_bomb_and_keeps_answering(tmp_path):
    flows = copy_flows(tmp_path)
    app = create_app(make_settings(flows_dir=flows))
    (flows / "menu.yaml").write_text(ALIAS_BOMB)
    store = app.extensions["router"].flows
    started = time.perf_counter()
    assert store.reload_if_changed(force=True) is False
    assert time.perf_counter() - started < 0.5, "refused before anything is expanded"
    assert "anchors and aliases" in str(store.last_error)
    response = post_signed(app.test_client(), "/voice", {"CallSid": "CA" + "1" * 32, "From": MOBILE,
                                                         "To": "+443300000111"})
    assert response.status_code == 200 and parse(response.data).find(".//Gather") is not None, \
        "the last good menu serves on"
