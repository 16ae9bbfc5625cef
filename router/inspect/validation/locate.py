"""Where a problem is: a file of the flow folder and the line an operator must edit.

Every check reports through a Locator, built from the `lines` map flowfile.read_folder() makes, so a
problem always names the file's label and the exact line, never a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from router.definition.flowfile import Path_, Problem, _dotted, _label

ERROR, WARNING = "error", "warning"
LANGUAGE_NAMES = {"en": "English", "cy": "Welsh"}


@dataclass(frozen=True)
class Locator:
    """Turns (file name, path in the file) into a Problem with the file's label and the right line."""

    folder: Path
    lines: dict[str, dict[Path_, int]]

    def line(self, name: str, path: Path_) -> int:
        known = self.lines.get(name, {})
        for cut in range(len(path), -1, -1):
            if path[:cut] in known:
                return known[path[:cut]]
        return 1

    def label(self, name: str) -> str:
        return _label(self.folder, name)

    def at(self, name: str, path: Path_) -> str:
        return f"{self.label(name)}:{self.line(name, path)}"

    def problem(self, name: str, path: Path_, reason: str, severity: str = ERROR, hint: str = "") -> Problem:
        return Problem(self.label(name), self.line(name, path), _dotted(path), reason, severity, hint)


def lang_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, repr(code))
