"""The shape of the code: small modules, and imports that go one way.

- No module of router/ or tasks/ is over MAX_LINES lines: a module that long does more than one job.
- No import cycle between modules, counting every import statement of a file: the ones inside
  functions and under `if TYPE_CHECKING:` included (a deferred import still ties two modules
  together: it only hides the cycle from the interpreter).

Both read the source with `ast`; nothing is imported. The layer rules themselves (who may import
whom) are import-linter's contracts in pyproject.toml (tests/test_static_checks.py).
"""
from __future__ import annotations

import ast
from pathlib import Path

from router.settings import REPO_ROOT

TOPS = ("router", "tasks")
MAX_LINES = 400

# Modules allowed over MAX_LINES (none: split one rather than add it here).
TOO_LONG_TODAY: set[str] = set()

# Import cycles tolerated (none: each would be a set of modules that reach one another).
CYCLES_TODAY: list[frozenset[str]] = []


def source_files() -> dict[str, Path]:
    """Module name -> file, for every module of the project's packages."""
    found = {}
    for top in TOPS:
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _import_nodes(tree: ast.AST):
    """Every Import/ImportFrom in the tree, at any depth (functions, TYPE_CHECKING blocks)."""
    return (node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)))


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The project's modules that `name` (at `path`) imports: `from a import b` counts as a.b when that is
    a module, else as a; `import a.b` as a.b."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[:len(anchor) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {target for target in targets if target in known and target != name}


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    known = set(files)
    return {name: imported_modules(name, path, known) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[frozenset[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def test_no_module_is_over_the_line_limit():
    lengths = {str(path.relative_to(REPO_ROOT)): len(path.read_text().splitlines())
               for path in source_files().values()}
    too_long = {path: n for path, n in lengths.items() if n > MAX_LINES and path not in TOO_LONG_TODAY}
    assert not too_long, f"split these modules (at most {MAX_LINES} lines, one job each): {too_long}"


def test_no_import_cycles_imports_inside_functions_included():
    new = [sorted(cycle) for cycle in cycles(import_graph())
           if not any(cycle <= allowed for allowed in CYCLES_TODAY)]
    assert not new, f"import cycles (break each: move the shared part to a module both import): {new}"


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    """The check itself can fail: imports deferred into a function or a TYPE_CHECKING block close
    cycles it must see."""
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def later():\n    from c import x\n")
    (tmp_path / "c.py").write_text("def f():\n    import a\n")
    (tmp_path / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from e import T\n")
    (tmp_path / "e.py").write_text("import d\n")
    (tmp_path / "f.py").write_text("import a, d\n")
    known = {"a", "b", "c", "d", "e", "f"}
    graph = {name: imported_modules(name, tmp_path / f"{name}.py", known) for name in known}
    assert graph["c"] == {"a"} and graph["d"] == {"e"}
    assert sorted(map(sorted, cycles(graph))) == [["a", "b", "c"], ["d", "e"]]
