"""The Redis schema in one place (router/store/keys.py): no module spells a key of its own.

A key spelled in two modules is a rename waiting to break silently (a gauge reading nothing, a
de-duplication that no longer matches), so every string literal in router/ and tasks/ that starts like
one of our keys is looked for, docstrings and comments aside.
"""
from __future__ import annotations

import ast
from pathlib import Path

from router.store import keys

REPO = Path(__file__).resolve().parent.parent
KEY_STARTS = ("hr:", "router:flows:")


def spelled_keys(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if node.value.startswith(KEY_STARTS):  # an f-string's leading text is a Constant too
                found.append(f"{node.lineno}: {node.value!r}")
    return found


def test_no_key_is_spelled_outside_keys_py():
    spelled = {}
    for path in sorted([*(REPO / "router").rglob("*.py"), *(REPO / "tasks").rglob("*.py")]):
        name = path.relative_to(REPO).as_posix()
        if name == "router/store/keys.py":
            continue
        if found := spelled_keys(path):
            spelled[name] = found
    assert spelled == {}, "name these keys in router/store/keys.py and use them from there"


def test_the_check_finds_a_spelled_key(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""hr:docs are fine"""\nKEY = "hr:stats"\nLOCK = f"hr:fu-lock:{1}"\n')
    assert [line.split(":")[0] for line in spelled_keys(sample)] == ["2", "3"]


def test_keys_of_numbers_and_sids_are_keyed_hashes_never_the_value():
    number, sid = "+447400123456", "SM" + "a" * 32
    for key in (keys.conversation(b"s", number), keys.sender_replies(b"s", number), keys.seen(b"s", sid),
                keys.urgent_replies(b"s", number), keys.followups_of_number(b"s", number),
                keys.followup_same_service(b"s", number, "ndah"), keys.followups_per_number(b"s", number),
                keys.call_ended(b"s", "CA" + "b" * 32)):
        assert key.startswith(keys.PREFIX) and "7400123456" not in key and "aaaa" not in key and "bbbb" not in key
    assert keys.conversation(b"s", number) != keys.conversation(b"t", number), "keyed by the secret"
    assert keys.conversation(b"s", number) != keys.sender_replies(b"s", number), "and by the kind"
