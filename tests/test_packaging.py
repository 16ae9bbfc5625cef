"""Every folder of Python code or data under router/ and tasks/ is listed in pyproject.toml, so a
non-editable install (a production image) carries it: setuptools installs only the packages named."""
from __future__ import annotations

import tomllib

from router.settings import REPO_ROOT


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(path.relative_to(REPO_ROOT).parts)
        for top in ("router", "tasks")
        for path in [REPO_ROOT / top, *(REPO_ROOT / top).rglob("*")]
        if path.is_dir() and path.name != "__pycache__" and any(
            child.suffix in {".py", ".yaml"} for child in path.iterdir())
    }
    assert folders <= listed, f"add to [tool.setuptools] packages: {sorted(folders - listed)}"
