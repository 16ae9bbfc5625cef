"""The layering the design relies on: a pure engine, and workers that never load the web framework."""
from __future__ import annotations

import subprocess
import sys

import pytest

from router.settings import REPO_ROOT


def modules_loaded_by(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_engine_knows_nothing_of_flask_twilio_or_redis():
    loaded = modules_loaded_by("import router.engine, router.definition.flowfile")
    assert not {"flask", "twilio", "redis", "celery"} & loaded


@pytest.mark.parametrize("module", ["tasks", "tasks.followup", "tasks.history"])
def test_tasks_never_import_flask(module):
    assert "flask" not in modules_loaded_by(f"import {module}")


def test_the_checks_are_imported_by_nothing_below_them():
    """One direction of imports: the loader, the model and the engine never load router.inspect.validation."""
    loaded = modules_loaded_by("import router.definition.flowfile, router.definition.model, router.engine, router.definition.hours")
    assert not {m for m in loaded if m.startswith("router.inspect.validation")}
