"""Read and validate the flow folder; every problem comes back as file, line and reason.

Operators edit these files by hand, so a mistake must be reported the way a person can fix it
("flows/services.yaml:14: services.galop.number: '0800 999' is not a valid phone number"), never as a
traceback, and a folder that fails is never half-loaded: load_flows() returns a whole Flows or raises.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from router.model import Config, Flows, MenuFile, PhrasesFile, ServicesFile

FILES: dict[str, type[BaseModel]] = {
    "config.yaml": Config,
    "services.yaml": ServicesFile,
    "menu.yaml": MenuFile,
    "phrases.yaml": PhrasesFile,
}

Path_ = tuple[Any, ...]


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    where: str
    reason: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        where = f"{self.where}: " if self.where else ""
        return f"{self.file}:{self.line}: {self.severity}: {where}{self.reason}"


class FlowError(Exception):
    """The flow folder cannot be used; .problems says exactly why."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class _LineLoader(yaml.SafeLoader):
    """A safe loader that also remembers the line of every key, and refuses duplicate keys."""


def _to_python(loader: _LineLoader, node: yaml.Node, path: Path_, lines: dict[Path_, int],
               problems: list[Problem], file: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in result:
                problems.append(Problem(file, key_node.start_mark.line + 1, _dotted(path + (key,)),
                                        f"{key!r} is given twice (first on line {lines[path + (key,)]})"))
                continue
            lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = _to_python(loader, value_node, path + (key,), lines, problems, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(loader, item, path + (i,), lines, problems, file) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_yaml(text: str, file: str) -> tuple[Any, dict[Path_, int], list[Problem]]:
    """YAML text -> (data, line of every path, problems). Syntax errors become one Problem."""
    lines: dict[Path_, int] = {}
    problems: list[Problem] = []
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines, [Problem(file, 1, "", "the file is empty")]
        return _to_python(loader, node, (), lines, problems, file), lines, problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, lines, [Problem(file, line, "", f"not valid YAML: {exc.problem or exc}")]
    finally:
        loader.dispose()


def _line_for(loc: Path_, lines: dict[Path_, int]) -> int:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return 1


def _reason(error: dict[str, Any]) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return "is required but missing"
    if error["type"] == "extra_forbidden":
        return "is not a known field (check the spelling)"
    if error["type"] == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"type {ctx.get('tag')!r} is not one of: {ctx.get('expected_tags')}"
    return message


def validate_file(model: type[BaseModel], data: Any, lines: dict[Path_, int], file: str):
    """Validate parsed data against a model; returns (instance or None, problems with lines)."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # pydantic adds the union member's tag ("menu", "function-after[...]") into loc: drop those
            loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and "[" in part))
            loc = _strip_union_tags(loc, lines)
            if error["type"] == "union_tag_invalid":
                loc = loc + ("type",)
            problems.append(Problem(file, _line_for(loc, lines), _dotted(loc), _reason(error)))
        return None, problems


def _strip_union_tags(loc: Path_, lines: dict[Path_, int]) -> Path_:
    """Drop discriminator tags pydantic inserts (nodes.main.menu.options -> nodes.main.options)."""
    out: list[Any] = []
    for part in loc:
        candidate = tuple(out) + (part,)
        if candidate in lines or isinstance(part, int) or not out:
            out.append(part)
        elif part in {"menu", "connect", "say", "end"} and tuple(out) in lines:
            continue
        else:
            out.append(part)
    return tuple(out)


def read_folder(folder: Path) -> tuple[dict[str, tuple[Any, dict[Path_, int]]], list[Problem], str]:
    """Parse every flow file of the folder; returns parsed data by file name, problems, content hash."""
    digest = hashlib.sha256()
    parsed: dict[str, tuple[Any, dict[Path_, int]]] = {}
    problems: list[Problem] = []
    for name in FILES:
        path = folder / name
        label = _label(folder, name)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            problems.append(Problem(label, 1, "", f"cannot be read: {exc.strerror or exc}"))
            continue
        digest.update(name.encode() + b"\0" + raw + b"\0")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            problems.append(Problem(label, line, "", "is not UTF-8 text"))
            continue
        data, lines, file_problems = parse_yaml(text, label)
        problems.extend(file_problems)
        parsed[name] = (data, lines)
    return parsed, problems, digest.hexdigest()[:12]


def _label(folder: Path, name: str) -> str:
    try:
        return str((folder / name).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(folder / name)


def load_flows(folder: Path | str, *, lint: bool = True) -> Flows:
    """Load, validate and (by default) lint a flow folder. Raises FlowError listing every error."""
    folder = Path(folder)
    parsed, problems, version = read_folder(folder)
    models: dict[str, Any] = {}
    for name, model in FILES.items():
        if name not in parsed or parsed[name][0] is None:
            continue
        data, lines = parsed[name]
        instance, file_problems = validate_file(model, data, lines, _label(folder, name))
        problems.extend(file_problems)
        models[name] = instance
    if problems or any(models.get(name) is None for name in FILES):
        raise FlowError(problems or [Problem(str(folder), 1, "", "flow files are missing")])
    services = {sid: svc.model_copy(update={"id": sid}) for sid, svc in models["services.yaml"].services.items()}
    flows = Flows(
        config=models["config.yaml"],
        services=services,
        start=models["menu.yaml"].start,
        nodes=dict(models["menu.yaml"].nodes),
        phrases=dict(models["phrases.yaml"].phrases),
        version=version,
        phrase_review=dict(models["phrases.yaml"].review),
    )
    if lint:
        from router.lint import lint_flows  # lint renders every reply through the engine

        errors = [p for p in lint_flows(flows, folder, {n: parsed[n][1] for n in parsed}) if p.severity == "error"]
        if errors:
            raise FlowError(errors)
    return flows
