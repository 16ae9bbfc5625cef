"""The static checks configured in pyproject.toml pass, so `make test` (the README's test command, and
CI) fails on a finding: ruff (rules that catch bugs, no formatting), mypy (strict on router.engine and
router.store) and import-linter (the layer rules: which package may import which).

Each runs as its own process from the test environment, exactly as a developer would run it by hand:
`.venv/bin/ruff check .`, `.venv/bin/mypy`, `.venv/bin/lint-imports`.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from router.settings import REPO_ROOT

BIN = Path(sys.executable).parent


def run_tool(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def test_ruff_finds_nothing():
    result = run_tool(sys.executable, "-m", "ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)   # a first run (no .mypy_cache yet) on a busy 2-core machine takes a minute or more
def test_mypy_finds_nothing():
    # Its cache (.mypy_cache, git-ignored by a file mypy writes there) makes a second run take seconds.
    result = run_tool(sys.executable, "-m", "mypy", timeout=540)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_layer_contracts_hold():
    result = run_tool(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout
